/** Payload shapes of the product's channels (the cross-app contract), with light guards. */

export interface PriceUpdate {
  symbol: string;
  price: number;
  change24h?: number | null;
  volume24h?: number | null;
  timestamp?: number;
  sources?: string[];
  source?: "aggregate" | "simulated" | string;
  stale?: boolean;
  degraded?: boolean;
  twap?: number | null;
  /** The venue time (ms) of the newest quote in the aggregate. */
  quoted_at?: number | null;
}

export interface PriceBatch {
  updates: PriceUpdate[];
  timestamp?: number;
}

/** Global figures are `null` when no source ever gave them (CoinGecko never answered). */
export interface MarketOverview {
  total_market_cap?: number | null;
  total_volume?: number | null;
  btc_dominance?: number | null;
  top_gainers?: { symbol: string; price: number; change24h: number | null }[];
  top_losers?: { symbol: string; price: number; change24h: number | null }[];
  /** `side` is the taker's; `venue` the exchange it printed on. */
  recent_trades?: { symbol: string; price: number; qty: number; side: "buy" | "sell"; time: number; venue?: string }[];
  timestamp?: number;
  source?: string;
}

/**
 * A watched transaction's status (`transaction` frames of the monitor, the snapshot's
 * `pending`). The store also keeps transfers seen on chain (`transaction` activity) as
 * pending until final: they share the first fields, hence the optional ones and the index.
 */
export interface TransactionData {
  hash: string;
  status: "pending" | "included" | "confirmed" | "failed" | "dropped" | "replaced";
  confirmations?: number;
  required?: number;
  block?: number | null;
  from?: string | null;
  to?: string | null;
  value?: number;
  /** The exact amount in wei (`value` is a display value). */
  value_raw?: string;
  nonce?: number | null;
  chain?: number;
  reason?: string;
  found?: "api" | "pending" | "inclusion";
  note?: string;
  replaced_by?: string;
  [key: string]: unknown;
}

export interface WalletUpdate {
  type: "balance" | "transaction" | "approval" | "nft" | "security" | "backfill";
  address: string;
  chain: number;
  data: Record<string, unknown>;
  timestamp: number;
}

export interface WalletSnapshot {
  type: "snapshot";
  address: string;
  activity: WalletUpdate[];
  pending: TransactionData[];
  /** `token` is null for the native coin; `balance_raw` the exact integer. */
  balances: { chain: number; token: string | null; symbol: string; balance: number; balance_raw: string }[];
  /** Dangerous approvals still in force (`security` data with state "active"). */
  warnings?: SecurityWarning[];
  /** The history read on link, per chain (as in `backfill` frames). */
  backfill?: {
    chain: number;
    state: "waiting" | "queued" | "running" | "done";
    from_block: number | null;
    to_block: number | null;
    blocks_done: number;
    blocks_total: number;
    percent: number;
    found: number;
    error: string | null;
  }[];
}

/** A dangerous approval of a wallet (`security` frames and the snapshot's `warnings`). */
export interface SecurityWarning {
  id: string;
  kind: "approval";
  state: "active" | "cleared";
  reason: "unlimited" | "above_balance" | "approval_for_all" | null;
  level: "high" | "urgent" | null;
  standard: "erc20" | "operator";
  chain: number;
  token: string;
  symbol: string;
  spender: string;
  spender_name: string | null;
  known_spender: boolean;
  amount?: number;
  amount_raw?: string;
  decimals?: number | null;
  unlimited?: boolean;
  approved?: boolean;
  hash: string;
  block: number;
  revoke: { method: string; to: string; data: string; text: string };
}

export type Priority = "low" | "medium" | "high" | "urgent";

export interface Notification {
  id: string;
  type: string;
  title: string;
  body?: string;
  data?: Record<string, unknown>;
  priority: Priority;
  created_at: number;
  read_at: number | null;
}

export type NotificationEvent =
  | { event: "created"; notification: Notification; unread_count?: number }
  | { event: "read"; ids: string[]; unread_count: number }
  | { event: "read_all"; unread_count: number }
  | { event: "dismissed"; ids: string[]; unread_count: number }
  | { event: "snapshot"; unread_count: number; notifications: Notification[] };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

export function isPriceUpdate(v: unknown): v is PriceUpdate {
  return isObj(v) && typeof v.symbol === "string" && num(v.price);
}

export function isPriceBatch(v: unknown): v is PriceBatch {
  return isObj(v) && Array.isArray(v.updates);
}

export function isNotification(v: unknown): v is Notification {
  return isObj(v) && typeof v.id === "string" && typeof v.title === "string";
}

export function isNotificationEvent(v: unknown): v is NotificationEvent {
  if (!isObj(v) || typeof v.event !== "string") return false;
  switch (v.event) {
    case "created":
      return isNotification(v.notification);
    case "read":
    case "dismissed":
      return Array.isArray(v.ids) && num(v.unread_count);
    case "read_all":
      return true;
    case "snapshot":
      return Array.isArray(v.notifications) && num(v.unread_count);
    default:
      return false;
  }
}

export function isWalletUpdate(v: unknown): v is WalletUpdate {
  return isObj(v) && typeof v.type === "string" && isObj(v.data);
}

export function isSecurityWarning(v: unknown): v is SecurityWarning {
  return isObj(v) && typeof v.id === "string" && (v.state === "active" || v.state === "cleared") && isObj(v.revoke);
}

export function isWalletSnapshot(v: unknown): v is WalletSnapshot {
  return isObj(v) && v.type === "snapshot" && Array.isArray(v.activity);
}
