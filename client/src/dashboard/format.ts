/** Number and time formatting for the dashboard. */

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 });
const small = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumSignificantDigits: 6 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });

export function price(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  return Math.abs(value) >= 1 ? usd.format(value) : small.format(value);
}

export function bigMoney(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  return `$${compact.format(value)}`;
}

export function percent(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  return `${value > 0 ? "+" : ""}${value.toFixed(2)}%`;
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
