/** The client's channel subscriptions: listeners, status and server-side bookkeeping. */

import type { RealtimeError } from "./codes";
import type { Position, FrameId } from "./protocol";
import type { ChannelListener, ChannelStatus, MessageMeta } from "./types";
import type { RateOptions } from "./visibility";

/** One channel the page listens to (however many listeners share it). */
export interface Sub {
  /** The name as requested (the key of the registry and of StateSync). */
  channel: string;
  /** The server's canonical name from `subscribed`, when it differs. */
  canonical: string | null;
  listeners: Set<ChannelListener>;
  options: RateOptions;
  status: ChannelStatus;
  error: RealtimeError | null;
  /** Id of the subscribe in flight; messages are dropped until its `subscribed` (they will be replayed). */
  pendingId: FrameId | null;
  sentSince: Position | undefined;
  sentMaxRate: number | undefined;
  /** Subscribed (or subscribing) on the current socket. */
  onServer: boolean;
  /** Consecutive transient subscribe failures (backoff of the retry). */
  retries: number;
}

/**
 * Subscriptions survive reconnects: they are state, re-sent on every `welcome`.
 * Listener failures are logged and never stop the others.
 */
export class SubscriptionRegistry {
  private readonly subs = new Map<string, Sub>();
  private readonly aliases = new Map<string, Sub>();

  constructor(private readonly log: Pick<Console, "warn">) {}

  get(channel: string): Sub | undefined {
    return this.subs.get(channel);
  }

  /** By requested or canonical name (messages carry the canonical one). */
  lookup(name: string): Sub | undefined {
    return this.subs.get(name) ?? this.aliases.get(name);
  }

  byPendingId(id: FrameId): Sub | undefined {
    for (const sub of this.subs.values()) if (sub.pendingId === id) return sub;
    return undefined;
  }

  values(): IterableIterator<Sub> {
    return this.subs.values();
  }

  has(sub: Sub): boolean {
    return this.subs.get(sub.channel) === sub;
  }

  create(channel: string, options: RateOptions): Sub {
    const sub: Sub = {
      channel,
      canonical: null,
      listeners: new Set(),
      options,
      status: "pending",
      error: null,
      pendingId: null,
      sentSince: undefined,
      sentMaxRate: undefined,
      onServer: false,
      retries: 0,
    };
    this.subs.set(channel, sub);
    return sub;
  }

  remove(sub: Sub): void {
    if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
    if (sub.canonical !== null) this.aliases.delete(sub.canonical);
  }

  setCanonical(sub: Sub, canonical: string): void {
    if (canonical === sub.channel) return;
    sub.canonical = canonical;
    this.aliases.set(canonical, sub);
  }

  /** The name to use on the wire. */
  wireName(sub: Sub): string {
    return sub.canonical ?? sub.channel;
  }

  setStatus(sub: Sub, status: ChannelStatus, error: RealtimeError | null): void {
    if (sub.status === status && sub.error === error) return;
    sub.status = status;
    sub.error = error;
    this.each(sub, (l) => l.onStatus?.(status, error));
  }

  deliver(sub: Sub, data: unknown, meta: MessageMeta): void {
    this.each(sub, (l) => l.onMessage?.(data, meta));
  }

  reset(sub: Sub): void {
    this.each(sub, (l) => l.onReset?.());
  }

  private each(sub: Sub, fn: (listener: ChannelListener) => void): void {
    for (const listener of [...sub.listeners]) {
      try {
        fn(listener);
      } catch (err) {
        this.log.warn(`realtime: listener of ${sub.channel} failed`, err);
      }
    }
  }
}
