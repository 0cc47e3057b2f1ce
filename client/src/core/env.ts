/** The browser around the client: online/offline and page visibility, injectable. */

import type { Disposer } from "./emitter";

export interface BrowserEnv {
  isOnline(): boolean;
  isVisible(): boolean;
  onOnline(fn: () => void): Disposer;
  onOffline(fn: () => void): Disposer;
  onVisibilityChange(fn: (visible: boolean) => void): Disposer;
}

/** Outside a browser (tests, Node): always online and visible, no events. */
export const staticEnv: BrowserEnv = {
  isOnline: () => true,
  isVisible: () => true,
  onOnline: () => () => undefined,
  onOffline: () => () => undefined,
  onVisibilityChange: () => () => undefined,
};

export function browserEnv(): BrowserEnv {
  if (typeof window === "undefined" || typeof document === "undefined") return staticEnv;
  const listen = (target: EventTarget, name: string, fn: () => void): Disposer => {
    target.addEventListener(name, fn);
    return () => target.removeEventListener(name, fn);
  };
  return {
    // navigator.onLine is only trustworthy when false (no network at all).
    isOnline: () => navigator.onLine !== false,
    isVisible: () => document.visibilityState !== "hidden",
    onOnline: (fn) => listen(window, "online", fn),
    onOffline: (fn) => listen(window, "offline", fn),
    onVisibilityChange: (fn) => listen(document, "visibilitychange", () => fn(document.visibilityState !== "hidden")),
  };
}
