/** Outgoing frame pacing: stay under the server's per-connection rate limit. */

import type { TimerHandle, Timers } from "./timers";

/**
 * A token bucket sized from `welcome.limits` (rate, burst), slightly under the
 * server's, so a burst (resubscribing 12 channels and flushing the offline queue after
 * a reconnect) is spread out instead of earning `rate_limited` errors.
 */
export class Pacer {
  private tokens: number;
  private updatedAt: number;
  private readonly waiting: string[] = [];
  private timer: TimerHandle | null = null;

  constructor(private readonly timers: Timers, private readonly write: (text: string) => void, private rate = 18, private burst = 36) {
    this.tokens = burst;
    this.updatedAt = timers.now();
  }

  /** Use the server's limits with a 10 % margin. */
  configure(rate: number | undefined, burst: number | undefined): void {
    if (rate !== undefined && Number.isFinite(rate) && rate > 0) this.rate = rate * 0.9;
    if (burst !== undefined && Number.isFinite(burst) && burst >= 1) this.burst = Math.max(1, Math.floor(burst * 0.9));
    this.tokens = this.burst;
    this.updatedAt = this.timers.now();
  }

  get backlog(): number {
    return this.waiting.length;
  }

  send(text: string): void {
    this.refill();
    if (this.waiting.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.write(text);
      return;
    }
    this.waiting.push(text);
    this.arm();
  }

  /**
   * Carry on from `other` (a handover's pacer, whose socket becomes the socket): its
   * limits, tokens and backlog, so the frames just written there still count.
   */
  continueFrom(other: Pacer): void {
    this.reset();
    this.rate = other.rate;
    this.burst = other.burst;
    this.tokens = other.tokens;
    this.updatedAt = other.updatedAt;
    this.waiting.push(...other.waiting);
    other.reset();
    if (this.waiting.length > 0) this.arm();
  }

  /** Drop the backlog (the socket is gone; requests in it fail as connection_lost). */
  reset(): void {
    this.waiting.length = 0;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private refill(): void {
    const now = this.timers.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.rate);
    this.updatedAt = now;
  }

  private arm(): void {
    if (this.timer !== null) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.rate) * 1000));
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.refill();
      while (this.waiting.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.write(this.waiting.shift() as string);
      }
      if (this.waiting.length > 0) this.arm();
    }, wait);
  }
}
