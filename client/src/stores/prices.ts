/** Live prices per symbol: latest update, direction of the last change, a short history for sparklines. */

import type { WebSocketClient } from "../core/client";
import type { RealtimeError } from "../core/codes";
import type { Disposer } from "../core/emitter";
import type { FrameScheduler } from "../core/throttle";
import { Store } from "./store";
import { isPriceBatch, isPriceUpdate, type PriceUpdate } from "./types";

export interface PriceView extends PriceUpdate {
  /** Recent prices, oldest first (sparkline). */
  history: number[];
  /** Direction of the last change, for colouring. */
  direction: "up" | "down" | null;
}

export interface PricesSnapshot {
  prices: Record<string, PriceView>;
  errors: Record<string, RealtimeError>;
  /** Any price seen was simulated (the dashboard shows a label). */
  simulated: boolean;
}

/** Points kept per symbol for the sparkline. */
export const HISTORY_POINTS = 60;

export class PriceStore extends Store<PricesSnapshot> {
  private readonly prices = new Map<string, PriceView>();
  private readonly errors = new Map<string, RealtimeError>();
  private readonly watchers = new Map<string, { count: number; dispose: Disposer }>();

  constructor(private readonly client: WebSocketClient, scheduler?: FrameScheduler) {
    super(scheduler);
  }

  /** Watch symbols (reference counted); returns a disposer. */
  watch(symbols: readonly string[]): Disposer {
    const canonical = [...new Set(symbols.map((s) => s.trim().toUpperCase()).filter((s) => s !== ""))];
    for (const symbol of canonical) {
      const entry = this.watchers.get(symbol);
      if (entry !== undefined) {
        entry.count += 1;
        continue;
      }
      const dispose = this.client.subscribe(
        `prices:${symbol}`,
        {
          onMessage: (data) => this.apply(data),
          onReset: () => {
            // Continuity is lost: the sparkline must not join across the hole.
            const view = this.prices.get(symbol);
            if (view !== undefined) this.prices.set(symbol, { ...view, history: [] });
          },
          onStatus: (status, error) => {
            if (status === "error" && error !== null) this.errors.set(symbol, error);
            else this.errors.delete(symbol);
            this.changed();
          },
        },
        // Prices are the high-rate channel: conflated while the tab is hidden.
        { hiddenPolicy: "conflate" },
      );
      this.watchers.set(symbol, { count: 1, dispose });
    }
    return () => {
      for (const symbol of canonical) {
        const entry = this.watchers.get(symbol);
        if (entry === undefined) continue;
        entry.count -= 1;
        if (entry.count === 0) {
          entry.dispose();
          this.watchers.delete(symbol);
        }
      }
    };
  }

  /** Apply a PriceUpdate or a PriceBatch; anything else is ignored. */
  apply(data: unknown): void {
    if (isPriceBatch(data)) {
      for (const update of data.updates) this.applyOne(update);
    } else {
      this.applyOne(data);
    }
  }

  private applyOne(data: unknown): void {
    if (!isPriceUpdate(data)) return;
    const symbol = data.symbol.toUpperCase();
    const previous = this.prices.get(symbol);
    const history = previous === undefined ? [] : previous.history.slice(-(HISTORY_POINTS - 1));
    history.push(data.price);
    let direction = previous?.direction ?? null;
    if (previous !== undefined && data.price !== previous.price) direction = data.price > previous.price ? "up" : "down";
    this.prices.set(symbol, { ...data, symbol, history, direction });
    this.changed();
  }

  protected build(): PricesSnapshot {
    const prices: Record<string, PriceView> = {};
    let simulated = false;
    for (const [symbol, view] of this.prices) {
      prices[symbol] = view;
      if (view.source === "simulated") simulated = true;
    }
    return { prices, errors: Object.fromEntries(this.errors), simulated };
  }
}
