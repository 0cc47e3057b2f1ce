/** What a high-rate subscription asks of the server while the page is hidden (battery, bandwidth). */

export type HiddenPolicy =
  /** Keep the subscription but ask for conflated delivery (`max_rate`). */
  | "conflate"
  /** Unsubscribe while hidden; resubscribe with `since` when visible again. */
  | "pause"
  /** Do nothing (low-rate or must-not-miss channels: notifications, wallets). */
  | "none";

export interface RateOptions {
  /** `max_rate` to ask for while visible (undefined: every message). */
  maxRate?: number;
  hiddenPolicy?: HiddenPolicy;
  /** `max_rate` while hidden with the "conflate" policy (messages per second). */
  hiddenMaxRate?: number;
}

/** One update per 5 s is plenty for a tab nobody looks at; the newest value is never lost. */
export const DEFAULT_HIDDEN_MAX_RATE = 0.2;

export interface Desired {
  active: boolean;
  maxRate: number | undefined;
}

/** What a subscription should look like for the page's visibility. */
export function desiredSubscription(options: RateOptions, visible: boolean): Desired {
  const policy = options.hiddenPolicy ?? "none";
  if (visible || policy === "none") return { active: true, maxRate: options.maxRate };
  if (policy === "pause") return { active: false, maxRate: options.maxRate };
  const hidden = options.hiddenMaxRate ?? DEFAULT_HIDDEN_MAX_RATE;
  return { active: true, maxRate: options.maxRate === undefined ? hidden : Math.min(options.maxRate, hidden) };
}
