/** Everything the client sends: paced writes, requests awaiting replies, the offline queue. */

import { ClientErrorCode, RealtimeError } from "./codes";
import { OfflineQueue } from "./offlineQueue";
import { Pacer } from "./pacer";
import type { FrameId } from "./protocol";
import { PendingRequests } from "./requests";
import type { Timers } from "./timers";

interface Queued {
  text: string;
  id: FrameId | undefined;
}

export class Outbox {
  readonly pending: PendingRequests;
  private readonly queue: OfflineQueue<Queued>;
  private readonly pacer: Pacer;

  constructor(
    timers: Timers,
    write: (text: string) => void,
    queueCapacity: number,
    /** The queue's size changed (status displays show it). */
    private readonly onQueueChange: () => void,
    /** A request got no answer in time (it no longer waits for one). */
    private readonly onTimeout: () => void = () => undefined,
  ) {
    this.pending = new PendingRequests(timers);
    this.queue = new OfflineQueue(queueCapacity);
    this.pacer = new Pacer(timers, write);
  }

  get queued(): number {
    return this.queue.size;
  }

  configure(rate: number | undefined, burst: number | undefined): void {
    this.pacer.configure(rate, burst);
  }

  /** A handover's new socket became the socket: pace as its pacer did (see Pacer.continueFrom). */
  adoptPacer(pacer: Pacer): void {
    this.pacer.continueFrom(pacer);
  }

  /** A request written to the socket still waits for its reply (or error, or timeout). */
  get awaitingReplies(): boolean {
    return this.pending.hasSent();
  }

  /** Write through the pacer (the socket is open). */
  sendNow(text: string): void {
    this.pacer.send(text);
  }

  /** Register a request with a timeout; `sent` marks it as already written. */
  track(id: FrameId, type: string, timeoutMs: number, sent: boolean): Promise<unknown> {
    const promise = this.pending.add(id, type, timeoutMs, () => {
      // Timed out: if it is still queued it must never be sent (the UI rolled it back).
      if (this.queue.remove((item) => item.id === id) !== undefined) this.onQueueChange();
      this.onTimeout();
    });
    const entry = this.pending.get(id);
    if (entry !== undefined) entry.sent = sent;
    return promise;
  }

  /** A request: written now when open, otherwise queued (refused with `queue_full` when full). */
  request(id: FrameId, type: string, text: string, timeoutMs: number, open: boolean): Promise<unknown> {
    const promise = this.track(id, type, timeoutMs, open);
    if (open) {
      this.pacer.send(text);
    } else if (!this.queue.push({ text, id })) {
      this.pending.reject(id, new RealtimeError(ClientErrorCode.QueueFull, "offline queue is full"));
    } else {
      this.onQueueChange();
    }
    return promise;
  }

  /** A frame without reply: written now when open, otherwise queued; false if refused. */
  post(text: string, open: boolean): boolean {
    if (open) {
      this.pacer.send(text);
      return true;
    }
    const ok = this.queue.push({ text, id: undefined });
    this.onQueueChange();
    return ok;
  }

  /** After `welcome` and the resubscribes: the queue in order, minus what timed out. */
  flush(): void {
    const items = this.queue.drain();
    for (const item of items) {
      if (item.id !== undefined) {
        const entry = this.pending.get(item.id);
        if (entry === undefined) continue;
        entry.sent = true;
      }
      this.pacer.send(item.text);
    }
    if (items.length > 0) this.onQueueChange();
  }

  /** The socket is gone: the paced backlog is dropped, written requests have an unknown outcome. */
  linkLost(): void {
    this.pacer.reset();
    this.pending.rejectSent(() => new RealtimeError(ClientErrorCode.ConnectionLost, "connection lost before the reply"));
  }

  /** `disconnect()`: nothing will be sent any more. */
  closeAll(): void {
    this.pacer.reset();
    this.queue.drain();
    this.pending.rejectAll(() => new RealtimeError(ClientErrorCode.Closed, "client disconnected"));
  }
}
