/** Client side of the heartbeat: dead-link detection and client pings for RTT and clock skew. */

import type { TimerHandle, Timers } from "./timers";

export interface HeartbeatCallbacks {
  /** Nothing heard for `interval + timeout`: the link is dead. */
  onDead: () => void;
  /** Send a client ping with this id. */
  sendPing: (id: string) => void;
  onRtt: (ms: number) => void;
  onMissed: () => void;
  /** Estimated server-clock minus local-clock offset, from a pong's server_time. */
  onClockOffset: (offsetMs: number) => void;
}

/** Client pings at most this often: RTT for the status bar without spending the rate limit. */
export const CLIENT_PING_EVERY_MS = 15_000;

export class HeartbeatMonitor {
  private deadTimer: TimerHandle | null = null;
  private pingTimer: TimerHandle | null = null;
  private lastSeen = 0;
  private limitMs = 0;
  private counter = 0;
  private outstanding: { id: string; sentAt: number; wallSentAt: number } | null = null;

  constructor(private readonly timers: Timers, private readonly callbacks: HeartbeatCallbacks, private readonly pingEveryMs = CLIENT_PING_EVERY_MS) {}

  /** Start watching after `welcome` with the server's heartbeat settings (ms). */
  start(intervalMs: number, timeoutMs: number): void {
    this.stop();
    this.limitMs = intervalMs + timeoutMs;
    this.lastSeen = this.timers.now();
    this.armDead(this.limitMs);
    this.ping();
  }

  /** Any frame from the server proves the link is alive. Cheap: no timer per frame. */
  seen(): void {
    this.lastSeen = this.timers.now();
  }

  /** A `pong` arrived; returns true if it answered our ping. */
  pong(id: unknown, serverTime: number | undefined): boolean {
    const out = this.outstanding;
    if (out === null || id !== out.id) return false;
    this.outstanding = null;
    const rtt = this.timers.now() - out.sentAt;
    this.callbacks.onRtt(rtt);
    if (serverTime !== undefined) {
      // NTP-style: the server read its clock about half an RTT after we sent.
      this.callbacks.onClockOffset(serverTime - (out.wallSentAt + rtt / 2));
    }
    return true;
  }

  stop(): void {
    if (this.deadTimer !== null) this.timers.clearTimeout(this.deadTimer);
    if (this.pingTimer !== null) this.timers.clearTimeout(this.pingTimer);
    this.deadTimer = this.pingTimer = null;
    this.outstanding = null;
  }

  private armDead(ms: number): void {
    this.deadTimer = this.timers.setTimeout(() => this.checkDead(), Math.max(0, ms));
  }

  private checkDead(): void {
    this.deadTimer = null;
    const idle = this.timers.now() - this.lastSeen;
    if (idle >= this.limitMs) {
      this.stop();
      this.callbacks.onDead();
      return;
    }
    this.armDead(this.limitMs - idle);
  }

  private ping(): void {
    if (this.outstanding !== null) this.callbacks.onMissed();
    this.counter += 1;
    const id = `c${this.counter}`;
    this.outstanding = { id, sentAt: this.timers.now(), wallSentAt: this.timers.wallNow() };
    this.callbacks.sendPing(id);
    this.pingTimer = this.timers.setTimeout(() => this.ping(), this.pingEveryMs);
  }
}
