/** Requests waiting for the server's reply, matched by `id`, each with a timeout. */

import { ClientErrorCode, RealtimeError } from "./codes";
import type { FrameId } from "./protocol";
import type { TimerHandle, Timers } from "./timers";

export interface Pending {
  id: FrameId;
  type: string;
  resolve: (value: unknown) => void;
  reject: (error: RealtimeError) => void;
  timer: TimerHandle | null;
  /** Written to a socket (false while it waits in the offline queue). */
  sent: boolean;
}

export class PendingRequests {
  private readonly map = new Map<FrameId, Pending>();

  constructor(private readonly timers: Timers) {}

  get size(): number {
    return this.map.size;
  }

  has(id: FrameId): boolean {
    return this.map.has(id);
  }

  get(id: FrameId): Pending | undefined {
    return this.map.get(id);
  }

  /**
   * Register a request; `onTimeout` runs before the promise is rejected (to take the
   * frame out of the offline queue: a request the UI already rolled back must not be
   * sent later).
   */
  add(id: FrameId, type: string, timeoutMs: number, onTimeout: () => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const entry: Pending = { id, type, resolve, reject, timer: null, sent: false };
      entry.timer = this.timers.setTimeout(() => {
        if (this.map.get(id) !== entry) return;
        this.map.delete(id);
        onTimeout();
        reject(new RealtimeError(ClientErrorCode.Timeout, `${type} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.map.set(id, entry);
    });
  }

  resolve(id: FrameId, value: unknown): boolean {
    const entry = this.take(id);
    if (entry === undefined) return false;
    entry.resolve(value);
    return true;
  }

  reject(id: FrameId, error: RealtimeError): boolean {
    const entry = this.take(id);
    if (entry === undefined) return false;
    entry.reject(error);
    return true;
  }

  /** Some request written to the socket still waits for its answer. */
  hasSent(): boolean {
    for (const entry of this.map.values()) if (entry.sent) return true;
    return false;
  }

  /** The socket died: requests already written have an unknown outcome. */
  rejectSent(error: () => RealtimeError): void {
    for (const entry of [...this.map.values()]) {
      if (entry.sent) this.reject(entry.id, error());
    }
  }

  rejectAll(error: () => RealtimeError): void {
    for (const entry of [...this.map.values()]) this.reject(entry.id, error());
  }

  private take(id: FrameId): Pending | undefined {
    const entry = this.map.get(id);
    if (entry === undefined) return undefined;
    this.map.delete(id);
    if (entry.timer !== null) this.timers.clearTimeout(entry.timer);
    return entry;
  }
}
