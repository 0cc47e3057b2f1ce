/** One wallet's live activity: pending transactions, recent activity, balance changes. */

import type { ChannelStatus, WebSocketClient } from "../core/client";
import type { RealtimeError } from "../core/codes";
import type { Disposer } from "../core/emitter";
import type { FrameScheduler } from "../core/throttle";
import { Store } from "./store";
import { isSecurityWarning, isWalletSnapshot, isWalletUpdate, type SecurityWarning, type TransactionData, type WalletSnapshot, type WalletUpdate } from "./types";

export interface WalletState {
  address: string;
  pendingTxs: TransactionData[];
  /** Newest first, at most ACTIVITY_LIMIT. */
  recentActivity: WalletUpdate[];
  /** `balance` updates, newest first (and the snapshot's balances). */
  balanceChanges: WalletUpdate[];
  balances: WalletSnapshot["balances"];
  /** Dangerous approvals in force, newest first (a revocation removes one). */
  warnings: SecurityWarning[];
  status: ChannelStatus;
  error: RealtimeError | null;
}

export const ACTIVITY_LIMIT = 50;
const FINAL = new Set(["confirmed", "failed", "dropped", "replaced"]);

function txHash(update: WalletUpdate): string | undefined {
  const hash = update.data.hash;
  return typeof hash === "string" ? hash.toLowerCase() : undefined;
}

/** Identity of an activity row: a transaction's updates replace each other; other rows are kept apart. */
function activityKey(update: WalletUpdate): string {
  const d = update.data;
  const parts = [update.type, update.chain, txHash(update) ?? "", d.log_index ?? d.logIndex ?? "", d.token ?? "", d.token_id ?? ""];
  // A transaction's status updates replace each other; an internal transfer (value moved
  // inside a contract call) is a row of its own beside them.
  return update.type === "transaction" && d.standard !== "internal" ? `tx:${update.chain}:${txHash(update) ?? ""}` : parts.join(":");
}

export class WalletStore extends Store<WalletState> {
  private pending = new Map<string, TransactionData>();
  private activity: WalletUpdate[] = [];
  private balanceChanges: WalletUpdate[] = [];
  private balances: WalletSnapshot["balances"] = [];
  private warnings = new Map<string, SecurityWarning>();
  private status: ChannelStatus = "pending";
  private error: RealtimeError | null = null;
  private dispose: Disposer | null = null;
  private watchers = 0;

  constructor(private readonly client: WebSocketClient, readonly address: string, scheduler?: FrameScheduler) {
    super(scheduler);
  }

  watch(): Disposer {
    this.watchers += 1;
    if (this.dispose === null) {
      this.dispose = this.client.subscribe(`wallet:${this.address}`, {
        onMessage: (data) => this.apply(data),
        onReset: () => this.clear(),
        onStatus: (status, error) => {
          this.status = status;
          this.error = error;
          this.changed();
        },
      });
    }
    return () => {
      this.watchers -= 1;
      if (this.watchers === 0 && this.dispose !== null) {
        this.dispose();
        this.dispose = null;
      }
    };
  }

  apply(data: unknown): void {
    if (isWalletSnapshot(data)) {
      this.clear();
      this.activity = data.activity.filter(isWalletUpdate).slice(0, ACTIVITY_LIMIT);
      for (const tx of data.pending ?? []) if (typeof tx.hash === "string") this.pending.set(tx.hash.toLowerCase(), tx);
      this.balances = Array.isArray(data.balances) ? data.balances : [];
      this.balanceChanges = this.activity.filter((u) => u.type === "balance");
      for (const w of data.warnings ?? []) if (isSecurityWarning(w) && w.state === "active") this.warnings.set(w.id, w);
      this.changed();
      return;
    }
    if (!isWalletUpdate(data)) return;
    if (data.type === "security") {
      const w = data.data;
      if (!isSecurityWarning(w)) return;
      this.warnings.delete(w.id);
      // Newest first: a re-raised warning moves to the top.
      if (w.state === "active") this.warnings = new Map([[w.id, w], ...this.warnings]);
      this.changed();
      return;
    }
    const hash = txHash(data);
    if (data.data.removed === true) {
      // Reorg: the block that carried it is gone; drop what it told us.
      const key = activityKey(data);
      this.activity = this.activity.filter((u) => activityKey(u) !== key && (hash === undefined || txHash(u) !== hash));
      this.balanceChanges = this.balanceChanges.filter((u) => hash === undefined || txHash(u) !== hash);
      if (hash !== undefined) this.pending.delete(hash);
      this.changed();
      return;
    }
    if (data.type === "transaction" && hash !== undefined) {
      const tx = data.data as unknown as TransactionData;
      if (FINAL.has(String(tx.status))) this.pending.delete(hash);
      else this.pending.set(hash, tx);
    }
    if (data.type === "balance") this.balanceChanges = [data, ...this.balanceChanges].slice(0, ACTIVITY_LIMIT);
    const key = activityKey(data);
    this.activity = [data, ...this.activity.filter((u) => activityKey(u) !== key)].slice(0, ACTIVITY_LIMIT);
    this.changed();
  }

  private clear(): void {
    this.pending = new Map();
    this.activity = [];
    this.balanceChanges = [];
    this.balances = [];
    this.warnings = new Map();
    this.changed();
  }

  protected build(): WalletState {
    return {
      address: this.address,
      pendingTxs: [...this.pending.values()],
      recentActivity: this.activity,
      balanceChanges: this.balanceChanges,
      balances: this.balances,
      warnings: [...this.warnings.values()],
      status: this.status,
      error: this.error,
    };
  }
}
