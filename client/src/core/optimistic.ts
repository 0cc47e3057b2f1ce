/** Optimistic updates over server state, keyed by request id, confirmed or rolled back. */

export type Patch<S> = (state: S) => S;

/**
 * The view is the server's state (`base`) with every pending patch applied in order.
 * A patch must be idempotent over any base (for example "mark n:1 read", never
 * "decrement the count"): the server's own event for the same change may arrive
 * before or after the reply, and the view must come out the same either way.
 */
export class OptimisticState<S> {
  private base: S;
  private readonly pending = new Map<string | number, Patch<S>>();
  private cached: S | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(initial: S) {
    this.base = initial;
  }

  /** The state to render. Stable identity until something changes. */
  get view(): S {
    if (this.cached === null) {
      let state = this.base;
      for (const patch of this.pending.values()) state = patch(state);
      this.cached = state;
    }
    return this.cached;
  }

  get serverState(): S {
    return this.base;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Server truth changed (an event or a snapshot). Pending patches stay on top. */
  setBase(update: Patch<S>): void {
    this.base = update(this.base);
    this.changed();
  }

  applyOptimistic(requestId: string | number, patch: Patch<S>): void {
    this.pending.set(requestId, patch);
    this.changed();
  }

  /** The server accepted: the patch becomes part of the base. */
  confirmUpdate(requestId: string | number): void {
    const patch = this.pending.get(requestId);
    if (patch === undefined) return;
    this.pending.delete(requestId);
    this.base = patch(this.base);
    this.changed();
  }

  /** The server refused, or no answer came in time: the patch disappears. */
  rollbackUpdate(requestId: string | number): void {
    if (this.pending.delete(requestId)) this.changed();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    this.cached = null;
    for (const fn of [...this.listeners]) fn();
  }
}
