/** Battery mode: a page hidden for a while, with Web Push on, closes its socket and relies on push. */

import type { Disposer } from "./emitter";
import type { BrowserEnv } from "./env";
import type { TimerHandle, Timers } from "./timers";

/** Hidden this long (and push on) before the socket is closed (issue #14: 5 min). */
export const DEFAULT_SLEEP_AFTER_MS = 5 * 60_000;

/** What battery mode drives: the client's `sleep()` / `wake()`. */
export interface Sleeper {
  sleep(): void;
  wake(): void;
  readonly sleeping: boolean;
}

export interface BatteryOptions {
  env: BrowserEnv;
  timers: Timers;
  /** True when the user will still be told what matters with the socket closed (push is on). */
  canSleep: () => boolean;
  sleepAfterMs?: number;
}

/**
 * Hidden for `sleepAfterMs` with push on: `sleep()` (the socket closes; the server pushes
 * instead, since the user has no open socket). Visible again: `wake()` reconnects and
 * every subscription resumes with `since`, so nothing told meanwhile is missed. A visible
 * page never sleeps, and its heartbeat is unchanged.
 */
export class BatterySaver {
  private timer: TimerHandle | null = null;
  private disposeVisibility: Disposer | null = null;
  readonly sleepAfterMs: number;

  constructor(
    private readonly target: Sleeper,
    private readonly options: BatteryOptions,
  ) {
    this.sleepAfterMs = Math.max(0, options.sleepAfterMs ?? DEFAULT_SLEEP_AFTER_MS);
  }

  start(): Disposer {
    if (this.disposeVisibility === null) {
      this.disposeVisibility = this.options.env.onVisibilityChange((visible) => (visible ? this.onVisible() : this.onHidden()));
      if (!this.options.env.isVisible()) this.onHidden();
    }
    return () => this.stop();
  }

  stop(): void {
    this.cancel();
    this.disposeVisibility?.();
    this.disposeVisibility = null;
  }

  private onHidden(): void {
    this.cancel();
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = null;
      if (!this.options.env.isVisible() && this.options.canSleep() && !this.target.sleeping) this.target.sleep();
    }, this.sleepAfterMs);
  }

  private onVisible(): void {
    this.cancel();
    if (this.target.sleeping) this.target.wake();
  }

  private cancel(): void {
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
