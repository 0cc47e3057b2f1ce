/** A bounded FIFO of frames waiting for a connection. */

/**
 * Overflow policy: **the newest item is refused** (`push` returns false and the caller
 * rejects its promise with `queue_full`). The older items are the user's earlier
 * intents and keep their order; silently dropping them (drop-oldest) would make a
 * later action apply without an earlier one. Subscriptions are never queued: they are
 * state, re-sent from the subscription registry on every connect.
 */
export class OfflineQueue<T> {
  private items: T[] = [];

  constructor(readonly capacity: number = 100) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError("capacity must be a non-negative integer");
  }

  get size(): number {
    return this.items.length;
  }

  push(item: T): boolean {
    if (this.items.length >= this.capacity) return false;
    this.items.push(item);
    return true;
  }

  /** Remove one item (for example a request that timed out while queued). */
  remove(predicate: (item: T) => boolean): T | undefined {
    const index = this.items.findIndex(predicate);
    if (index < 0) return undefined;
    return this.items.splice(index, 1)[0];
  }

  /** Take everything, oldest first. */
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }
}
