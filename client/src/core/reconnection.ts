/** When to reconnect: full-jitter backoff, server hints, online/offline, quality. */

import { DEFAULT_BACKOFF, fullJitter, type BackoffOptions } from "./backoff";
import { CloseCode } from "./codes";
import type { Disposer } from "./emitter";
import type { BrowserEnv } from "./env";
import { QualityTracker, type Quality } from "./quality";
import type { TimerHandle, Timers } from "./timers";

export interface ReconnectionOptions {
  timers: Timers;
  env: BrowserEnv;
  random?: () => number;
  backoff?: BackoffOptions;
  /**
   * Clamp of a server `reconnect.after_ms`. The gateway draws it from [0, 5 s); a
   * larger value is a bug or hostile, and a client must never sit idle for minutes.
   */
  maxServerDelayMs?: number;
  /** A connection is "stable" after this long; only then does the attempt counter reset. */
  stableAfterMs?: number;
  /** Minimum delay after close 4429 (rate limited) or 1013 (try again later): reconnecting at once would be refused again. */
  rateLimitedDelayMs?: number;
  /** Called when it is time to open a new socket. */
  onRetry: () => void;
  /** Called whenever the schedule changes (for status displays). */
  onChange?: () => void;
}

export const MAX_SERVER_DELAY_MS = 30_000;
/**
 * Resetting the counter on `welcome` would let a server that accepts and closes at
 * once drive a tight reconnect loop; requiring a few seconds of stability does not.
 */
export const STABLE_AFTER_MS = 5_000;
export const RATE_LIMITED_DELAY_MS = 5_000;

export interface RetryHint {
  closeCode?: number;
  /** `after_ms` of a server `reconnect` frame (unclamped, may be absurd). */
  serverAfterMs?: number;
}

export class ReconnectionManager {
  private attemptCount = 0;
  private timer: TimerHandle | null = null;
  private stableTimer: TimerHandle | null = null;
  private retryAt: number | null = null;
  private waitingForNetwork = false;
  private readonly quality: QualityTracker;
  private readonly random: () => number;
  private readonly backoff: BackoffOptions;
  private readonly maxServerDelayMs: number;
  private readonly stableAfterMs: number;
  private readonly rateLimitedDelayMs: number;
  private readonly disposers: Disposer[] = [];
  private everConnected = false;

  constructor(private readonly options: ReconnectionOptions) {
    this.random = options.random ?? Math.random;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.maxServerDelayMs = options.maxServerDelayMs ?? MAX_SERVER_DELAY_MS;
    this.stableAfterMs = options.stableAfterMs ?? STABLE_AFTER_MS;
    this.rateLimitedDelayMs = options.rateLimitedDelayMs ?? RATE_LIMITED_DELAY_MS;
    this.quality = new QualityTracker(() => options.timers.now());
    this.disposers.push(
      options.env.onOnline(() => this.handleOnline()),
      options.env.onOffline(() => this.options.onChange?.()),
    );
  }

  /** Retries scheduled since the last stable connection. */
  get attempt(): number {
    return this.attemptCount;
  }

  /** Monotonic time of the next retry, or null (none scheduled, or waiting for the network). */
  get nextRetryAt(): number | null {
    return this.retryAt;
  }

  get offline(): boolean {
    return !this.options.env.isOnline();
  }

  /** The delay to use for a retry, from the hint and the attempt counter (no side effects). */
  delayFor(hint: RetryHint = {}): number {
    const after = hint.serverAfterMs;
    if (after !== undefined) {
      // NaN or negative: the server asked for a reconnect without a usable delay.
      if (!Number.isFinite(after) || after < 0) return fullJitter(this.attemptCount, this.random, this.backoff);
      return Math.min(after, this.maxServerDelayMs);
    }
    const delay = fullJitter(this.attemptCount, this.random, this.backoff);
    // 4429 (rate limited) and 1013 (gateway full): reconnecting at once would be refused again.
    if (hint.closeCode === CloseCode.RateLimited || hint.closeCode === CloseCode.TryAgainLater) {
      return Math.max(delay, this.rateLimitedDelayMs);
    }
    return delay;
  }

  /** Schedule the next attempt; returns the delay in ms (or null while offline). */
  schedule(hint: RetryHint = {}): number | null {
    this.cancelTimer();
    this.clearStable();
    const delay = this.delayFor(hint);
    this.attemptCount += 1;
    if (!this.options.env.isOnline()) {
      // No network: retrying is pointless; the `online` event retries at once.
      this.waitingForNetwork = true;
      this.retryAt = null;
      this.options.onChange?.();
      return null;
    }
    this.retryAt = this.options.timers.now() + delay;
    this.timer = this.options.timers.setTimeout(() => this.fire(), delay);
    this.options.onChange?.();
    return delay;
  }

  /** A connection was established (welcome received). */
  connected(): void {
    this.cancelTimer();
    this.quality.connected(this.everConnected);
    this.everConnected = true;
    this.clearStable();
    this.stableTimer = this.options.timers.setTimeout(() => {
      this.stableTimer = null;
      this.attemptCount = 0;
      this.options.onChange?.();
    }, this.stableAfterMs);
  }

  rttSample(ms: number): void {
    this.quality.rttSample(ms);
  }

  missedPing(): void {
    this.quality.missedPing();
  }

  getQuality(): Quality {
    return this.quality.get();
  }

  /** Stop all timers (disconnect). */
  cancel(): void {
    this.cancelTimer();
    this.clearStable();
    this.waitingForNetwork = false;
  }

  dispose(): void {
    this.cancel();
    for (const d of this.disposers.splice(0)) d();
  }

  private handleOnline(): void {
    // Back online: retry now instead of waiting out a backoff chosen while offline.
    if (this.timer !== null || this.waitingForNetwork) {
      this.cancelTimer();
      this.waitingForNetwork = false;
      this.fire();
    } else {
      this.options.onChange?.();
    }
  }

  private fire(): void {
    this.timer = null;
    this.retryAt = null;
    this.options.onRetry();
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.options.timers.clearTimeout(this.timer);
    this.timer = null;
    this.retryAt = null;
  }

  private clearStable(): void {
    if (this.stableTimer !== null) this.options.timers.clearTimeout(this.stableTimer);
    this.stableTimer = null;
  }
}
