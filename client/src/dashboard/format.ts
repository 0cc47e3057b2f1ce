/** Number and time formatting for the dashboard. */

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 });
const small = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumSignificantDigits: 6 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });

/** A figure the server may not have: `null` (published when a source never answered) or absent. */
type Figure = number | null | undefined;

function known(value: Figure): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

export function price(value: Figure): string {
  if (!known(value)) return "—";
  return Math.abs(value) >= 1 ? usd.format(value) : small.format(value);
}

export function bigMoney(value: Figure): string {
  if (!known(value)) return "—";
  return `$${compact.format(value)}`;
}

export function percent(value: Figure): string {
  if (!known(value)) return "—";
  return `${value > 0 ? "+" : ""}${value.toFixed(2)}%`;
}

/** A share such as BTC dominance: "50.4%", or "—" when unknown. */
export function share(value: Figure): string {
  return known(value) ? `${value.toFixed(1)}%` : "—";
}

/** "12 s ago" against the server's clock (the client's may be skewed). */
export function ago(timestamp: number | undefined, serverNow: number): string {
  if (timestamp === undefined || !Number.isFinite(timestamp)) return "";
  const s = Math.max(0, Math.round((serverNow - timestamp) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function shortHash(value: unknown): string {
  const s = String(value ?? "");
  return s.length > 14 ? `${s.slice(0, 8)}…${s.slice(-4)}` : s;
}
