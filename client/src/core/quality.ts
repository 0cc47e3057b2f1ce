/** Connection quality from RTT samples, missed pongs and recent reconnects (pure). */

export type QualityLevel = "good" | "degraded" | "poor";

export interface Quality {
  level: QualityLevel;
  /** Smoothed round-trip time of client pings, or null before the first sample. */
  rttMs: number | null;
  /** Client pings not answered in time since the connection opened. */
  missedPings: number;
  /** Reconnections within `windowMs`. */
  recentReconnects: number;
}

/** Same grades as the server (realtime_project/gateway/heartbeat.py): 250 ms / 1 s. */
export const GOOD_RTT_MS = 250;
export const POOR_RTT_MS = 1_000;
/** Weight of a new sample (the server uses 1/4 too). */
export const RTT_ALPHA = 0.25;
/** Reconnects older than this no longer count against quality. */
export const RECONNECT_WINDOW_MS = 5 * 60_000;

export class QualityTracker {
  private rtt: number | null = null;
  private missed = 0;
  private reconnects: number[] = [];

  constructor(private readonly now: () => number, private readonly windowMs = RECONNECT_WINDOW_MS) {}

  rttSample(ms: number): void {
    const sample = Math.max(0, ms);
    this.rtt = this.rtt === null ? sample : (1 - RTT_ALPHA) * this.rtt + RTT_ALPHA * sample;
  }

  missedPing(): void {
    this.missed += 1;
  }

  /** A new connection: misses are per connection, reconnects are remembered. */
  connected(isReconnect: boolean): void {
    this.missed = 0;
    if (isReconnect) this.reconnects.push(this.now());
  }

  get(): Quality {
    const since = this.now() - this.windowMs;
    this.reconnects = this.reconnects.filter((t) => t >= since);
    const recent = this.reconnects.length;
    const rtt = this.rtt;
    let level: QualityLevel = "good";
    if (this.missed >= 2 || (rtt !== null && rtt > POOR_RTT_MS) || recent > 3) level = "poor";
    else if (this.missed === 1 || (rtt !== null && rtt > GOOD_RTT_MS) || recent > 1) level = "degraded";
    return { level, rttMs: rtt === null ? null : Math.round(rtt), missedPings: this.missed, recentReconnects: recent };
  }
}
