/** Base of the framework-free stores: listeners plus a snapshot with a stable identity. */

import { Coalescer, animationFrameScheduler, type FrameScheduler } from "../core/throttle";

/**
 * `subscribe`/`getSnapshot` match React's useSyncExternalStore; updates are coalesced
 * (one notification per animation frame by default) while the data is kept at once.
 */
export abstract class Store<S> {
  private readonly listeners = new Set<() => void>();
  private snapshot: S | null = null;
  private readonly coalescer: Coalescer;

  constructor(scheduler: FrameScheduler = animationFrameScheduler()) {
    this.coalescer = new Coalescer(() => this.notifyNow(), scheduler);
  }

  /** Build the immutable snapshot from the current data. */
  protected abstract build(): S;

  readonly subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  readonly getSnapshot = (): S => {
    if (this.snapshot === null) this.snapshot = this.build();
    return this.snapshot;
  };

  /** Something changed: rebuild and notify, at most once per frame. */
  protected changed(): void {
    this.coalescer.request();
  }

  /** Something changed that the user just did (a click): notify without waiting for a frame. */
  protected changedNow(): void {
    this.coalescer.dispose();
    this.notifyNow();
  }

  flush(): void {
    this.coalescer.flushNow();
  }

  private notifyNow(): void {
    this.snapshot = null;
    for (const fn of [...this.listeners]) fn();
  }
}
