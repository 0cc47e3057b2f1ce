/** Coalescing of UI notifications: at most one per animation frame or interval. */

import type { Timers } from "./timers";

/** Schedule `fn` once; returns a cancel function. */
export type FrameScheduler = (fn: () => void) => () => void;

/**
 * One callback per animation frame (the display's refresh; browsers pause it in
 * hidden tabs, which is what we want: nobody sees those renders). Falls back to a
 * 16 ms timer outside browsers.
 */
export function animationFrameScheduler(): FrameScheduler {
  if (typeof requestAnimationFrame === "function") {
    return (fn) => {
      const handle = requestAnimationFrame(() => fn());
      return () => cancelAnimationFrame(handle);
    };
  }
  return (fn) => {
    const handle = setTimeout(fn, 16);
    return () => clearTimeout(handle);
  };
}

/** At most one callback per `ms` (for example 250 ms for a table that need not animate). */
export function intervalScheduler(ms: number, timers: Timers): FrameScheduler {
  return (fn) => {
    const handle = timers.setTimeout(fn, ms);
    return () => timers.clearTimeout(handle);
  };
}

/**
 * Many `request()` calls between two frames become one `flush()`: a price channel
 * publishing 50 updates/s re-renders the table at most once per frame, and the data
 * of every update is still kept by the store (for sparklines).
 */
export class Coalescer {
  private cancel: (() => void) | null = null;

  constructor(private readonly flush: () => void, private readonly scheduler: FrameScheduler) {}

  get scheduled(): boolean {
    return this.cancel !== null;
  }

  request(): void {
    if (this.cancel !== null) return;
    let ran = false;
    const cancel = this.scheduler(() => {
      ran = true;
      this.cancel = null;
      this.flush();
    });
    // A synchronous scheduler has already run the flush: nothing is pending.
    if (!ran) this.cancel = cancel;
  }

  /** Flush now if something is scheduled (for example before unmount). */
  flushNow(): void {
    if (this.cancel === null) return;
    this.cancel();
    this.cancel = null;
    this.flush();
  }

  dispose(): void {
    this.cancel?.();
    this.cancel = null;
  }
}

/** Keeps only the newest value per key until taken: per-channel conflation on the client. */
export class LatestPerKey<T> {
  private values = new Map<string, T>();

  set(key: string, value: T): void {
    this.values.set(key, value);
  }

  get size(): number {
    return this.values.size;
  }

  take(): Map<string, T> {
    const out = this.values;
    this.values = new Map();
    return out;
  }
}
