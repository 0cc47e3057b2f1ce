/** Web Push opt-in: the service worker, the browser's permission and subscription, the server's record. */

import { Emitter, type Disposer } from "./emitter";

export type PushStatus =
  /** No service worker / Push API / Notification API (or not a secure context). */
  | "unsupported"
  /** The server has no VAPID key: push is off for this site. */
  | "unavailable"
  /** The user blocked notifications for this site (only the browser's settings can undo it). */
  | "denied"
  | "off"
  | "on"
  | "busy";

export interface PushSnapshot {
  status: PushStatus;
  /** Why the last enable/disable failed, for the UI. */
  error: string | null;
}

interface NotificationApi {
  readonly permission: NotificationPermission;
  requestPermission(): Promise<NotificationPermission>;
}

export interface PushDeps {
  fetch: typeof fetch;
  serviceWorker: ServiceWorkerContainer | undefined;
  notification: NotificationApi | undefined;
  /** Django's CSRF token (the `csrftoken` cookie) for the POSTs. */
  csrfToken: () => string;
  workerUrl?: string;
  apiBase?: string;
}

/** `applicationServerKey` wants bytes; the server gives base64url. */
export function base64UrlToBytes(value: string): Uint8Array<ArrayBuffer> {
  const padded = value.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (value.length % 4)) % 4);
  const raw = atob(padded);
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export function cookie(name: string, source: string): string {
  for (const part of source.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function browserPushDeps(): PushDeps {
  const hasWindow = typeof window !== "undefined";
  const supported = hasWindow && window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  return {
    fetch: hasWindow ? window.fetch.bind(window) : (undefined as unknown as typeof fetch),
    serviceWorker: supported ? navigator.serviceWorker : undefined,
    notification: supported ? window.Notification : undefined,
    csrfToken: () => (typeof document === "undefined" ? "" : cookie("csrftoken", document.cookie)),
  };
}

/**
 * The opt-in, never prompted on load: `enable()` runs from a click (browsers only show the
 * permission prompt for a user gesture), registers `/sw.js`, subscribes with the server's
 * VAPID key and posts the subscription; `disable()` undoes both. `refresh()` reads the
 * current state and re-posts an existing subscription, so the server (which drops
 * subscriptions its push service says are gone) and the browser agree.
 */
export class PushOptIn {
  private snapshot: PushSnapshot = { status: "busy", error: null };
  private readonly events = new Emitter<{ change: PushSnapshot }>();
  private readonly api: string;
  private readonly workerUrl: string;

  constructor(private readonly deps: PushDeps) {
    this.api = deps.apiBase ?? "/api/notifications/push/";
    this.workerUrl = deps.workerUrl ?? "/sw.js";
  }

  readonly subscribe = (fn: () => void): Disposer => this.events.on("change", fn);
  readonly getSnapshot = (): PushSnapshot => this.snapshot;

  /** Push is on for this browser: the socket may sleep while the page is hidden. */
  get enabled(): boolean {
    return this.snapshot.status === "on";
  }

  private set(status: PushStatus, error: string | null = null): void {
    this.snapshot = { status, error };
    this.events.emit("change", this.snapshot);
  }

  private done(status: PushStatus, error: string | null = null): PushSnapshot {
    this.set(status, error);
    return this.snapshot;
  }

  private supported(): boolean {
    return this.deps.serviceWorker !== undefined && this.deps.notification !== undefined;
  }

  private async serverKey(): Promise<string | null> {
    const response = await this.deps.fetch(this.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`push status: HTTP ${response.status}`);
    const body = (await response.json()) as { enabled?: boolean; public_key?: string | null };
    return body.enabled === true && typeof body.public_key === "string" ? body.public_key : null;
  }

  private async post(path: string, body: unknown): Promise<Response> {
    return this.deps.fetch(`${this.api}${path}`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": this.deps.csrfToken() },
      body: JSON.stringify(body),
    });
  }

  private async existing(): Promise<PushSubscription | null> {
    const registration = await this.deps.serviceWorker?.getRegistration("/");
    return registration === undefined ? null : registration.pushManager.getSubscription();
  }

  async refresh(): Promise<PushSnapshot> {
    try {
      if (!this.supported()) return this.done("unsupported");
      if (this.deps.notification?.permission === "denied") return this.done("denied");
      if ((await this.serverKey()) === null) return this.done("unavailable");
      const subscription = await this.existing();
      if (subscription === null || this.deps.notification?.permission !== "granted") return this.done("off");
      const response = await this.post("subscriptions/", subscription.toJSON());
      this.set(response.ok ? "on" : "off", response.ok ? null : `the server refused this browser's subscription (HTTP ${response.status})`);
    } catch (err) {
      this.set("off", String(err));
    }
    return this.snapshot;
  }

  /** Call from a click handler. */
  async enable(): Promise<PushSnapshot> {
    if (!this.supported()) return this.done("unsupported");
    this.set("busy");
    try {
      const permission = await this.deps.notification!.requestPermission();
      if (permission !== "granted") return this.done(permission === "denied" ? "denied" : "off");
      const key = await this.serverKey();
      if (key === null) return this.done("unavailable");
      const worker = this.deps.serviceWorker!;
      await worker.register(this.workerUrl, { scope: "/" });
      const registration = await worker.ready;
      const subscription =
        (await registration.pushManager.getSubscription()) ??
        (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key) }));
      const response = await this.post("subscriptions/", subscription.toJSON());
      if (!response.ok) {
        const body = (await response.json().catch(() => ({}))) as { message?: string };
        await subscription.unsubscribe().catch(() => false);
        return this.done("off", body.message ?? `HTTP ${response.status}`);
      }
      this.set("on");
    } catch (err) {
      this.set("off", err instanceof Error ? err.message : String(err));
    }
    return this.snapshot;
  }

  async disable(): Promise<PushSnapshot> {
    this.set("busy");
    try {
      const subscription = await this.existing();
      if (subscription !== null) {
        await this.post("unsubscribe/", { endpoint: subscription.endpoint });
        await subscription.unsubscribe();
      }
      this.set("off");
    } catch (err) {
      this.set("off", err instanceof Error ? err.message : String(err));
    }
    return this.snapshot;
  }
}
