/** Exponential backoff with full jitter (pure). */

export interface BackoffOptions {
  /** Ceiling of the first retry's random delay: the first retry is fast. */
  baseMs: number;
  /** Ceiling of any delay. */
  maxMs: number;
  factor: number;
}

/**
 * Defaults. The first retry is within 250 ms: a socket lost with one balancer or one
 * gateway is back through another one at once, and every second without it counts
 * against availability (issue #15); 250 ms still spreads a dropped gateway's 1,000
 * clients at ~4,000 connects/s, within what two gateways accept. The cap of 4 s keeps a
 * client that retries into a dead server at most ~4 s away from noticing it is back
 * (issue #7: reconnect within 5 s of the server's return), while full jitter spreads a
 * fleet uniformly over [0, cap] so a restart does not become a synchronised storm (AWS
 * Architecture Blog, "Exponential Backoff And Jitter": full jitter does the least work of
 * the schemes compared there).
 */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 4_000, factor: 2 };

/** Upper bound of the delay before retry `attempt` (0-based). */
export function backoffCeiling(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = options.baseMs * Math.pow(options.factor, Math.min(Math.max(0, attempt), 30));
  return Math.min(options.maxMs, exp);
}

/** Full jitter: uniform in [0, ceiling). `random` is injectable for tests. */
export function fullJitter(attempt: number, random: () => number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0.5;
  return Math.floor(unit * backoffCeiling(attempt, options));
}
