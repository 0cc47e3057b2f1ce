/** Notifications and announcements with an unread count, and optimistic read/dismiss. */

import type { ChannelStatus, WebSocketClient } from "../core/client";
import type { RealtimeError } from "../core/codes";
import type { Disposer } from "../core/emitter";
import { OptimisticState, type Patch } from "../core/optimistic";
import type { FrameScheduler } from "../core/throttle";
import { Store } from "./store";
import { isNotificationEvent, type Notification } from "./types";

/** The user's personal channel and the shared announcements (docs: cross-app contract). */
export const NOTIFICATION_CHANNELS = ["notifications", "announcements"] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];

/** Items kept in memory (the server's snapshot holds at most 50 per channel). */
export const KEEP = 100;

interface Item extends Notification {
  channel: NotificationChannel;
}

export interface NotificationData {
  items: readonly Item[];
  /** The server's badge: unread personal notifications plus unread announcements. */
  unread: number;
}

export interface NotificationsSnapshot {
  notifications: readonly Item[];
  unreadCount: number;
  status: Record<NotificationChannel, { status: ChannelStatus; error: RealtimeError | null }>;
  /** Last failed action (rolled back), for a toast. */
  lastError: RealtimeError | null;
}

const byNewest = (a: Item, b: Item): number => b.created_at - a.created_at || (a.id < b.id ? 1 : -1);

// Patches are idempotent over any base (see OptimisticState): each checks the item's state.
export const markReadPatch = (id: string, at: number): Patch<NotificationData> => (s) => {
  const item = s.items.find((n) => n.id === id);
  if (item === undefined || item.read_at !== null) return s;
  return { items: s.items.map((n) => (n.id === id ? { ...n, read_at: at } : n)), unread: Math.max(0, s.unread - 1) };
};

export const markAllReadPatch = (at: number): Patch<NotificationData> => (s) =>
  s.unread === 0 && s.items.every((n) => n.read_at !== null) ? s : { items: s.items.map((n) => (n.read_at === null ? { ...n, read_at: at } : n)), unread: 0 };

export const dismissPatch = (id: string): Patch<NotificationData> => (s) => {
  const item = s.items.find((n) => n.id === id);
  if (item === undefined) return s;
  return { items: s.items.filter((n) => n.id !== id), unread: item.read_at === null ? Math.max(0, s.unread - 1) : s.unread };
};

export class NotificationStore extends Store<NotificationsSnapshot> {
  private readonly state = new OptimisticState<NotificationData>({ items: [], unread: 0 });
  private readonly statuses: NotificationsSnapshot["status"] = {
    notifications: { status: "pending", error: null },
    announcements: { status: "pending", error: null },
  };
  private lastError: RealtimeError | null = null;
  private disposers: Disposer[] = [];
  private watchers = 0;

  constructor(private readonly client: WebSocketClient, scheduler?: FrameScheduler) {
    super(scheduler);
    this.state.subscribe(() => this.changedNow());
  }

  watch(): Disposer {
    this.watchers += 1;
    if (this.watchers === 1) {
      this.disposers = NOTIFICATION_CHANNELS.map((channel) =>
        this.client.subscribe(channel, {
          onMessage: (data) => this.apply(channel, data),
          // recovered:false: the snapshot that follows replaces this channel's items.
          onReset: () => undefined,
          onStatus: (status, error) => {
            this.statuses[channel] = { status, error };
            this.changed();
          },
        }),
      );
    }
    return () => {
      this.watchers -= 1;
      if (this.watchers === 0) for (const d of this.disposers.splice(0)) d();
    };
  }

  /** Apply one event of the contract from `channel`; malformed events are ignored. */
  apply(channel: NotificationChannel, data: unknown): void {
    if (!isNotificationEvent(data)) return;
    this.state.setBase((s) => {
      switch (data.event) {
        case "snapshot": {
          const fresh = data.notifications.map((n) => ({ ...n, channel }));
          const ids = new Set(fresh.map((n) => n.id));
          const others = s.items.filter((n) => n.channel !== channel && !ids.has(n.id));
          return { items: [...fresh, ...others].sort(byNewest).slice(0, KEEP), unread: data.unread_count };
        }
        case "created": {
          const n = { ...data.notification, channel };
          const exists = s.items.some((x) => x.id === n.id);
          const items = [n, ...s.items.filter((x) => x.id !== n.id)].sort(byNewest).slice(0, KEEP);
          // Announcements are shared, so their event cannot carry a per-user count.
          const unread = data.unread_count ?? (exists || n.read_at !== null ? s.unread : s.unread + 1);
          return { items, unread };
        }
        case "read": {
          const ids = new Set(data.ids);
          const now = Date.now();
          return { items: s.items.map((n) => (ids.has(n.id) && n.read_at === null ? { ...n, read_at: now } : n)), unread: data.unread_count };
        }
        case "read_all": {
          const now = Date.now();
          return { items: s.items.map((n) => (n.read_at === null ? { ...n, read_at: now } : n)), unread: 0 };
        }
        case "dismissed": {
          const ids = new Set(data.ids);
          return { items: s.items.filter((n) => !ids.has(n.id)), unread: data.unread_count };
        }
      }
    });
  }

  markAsRead(id: string): Promise<void> {
    return this.act("notifications.mark_read", { notification_id: id }, markReadPatch(id, Date.now()));
  }

  markAllRead(): Promise<void> {
    return this.act("notifications.mark_all_read", {}, markAllReadPatch(Date.now()));
  }

  dismiss(id: string): Promise<void> {
    return this.act("notifications.dismiss", { notification_id: id }, dismissPatch(id));
  }

  /** Optimistic action: shown at once, confirmed by the reply, rolled back on error or timeout. */
  private async act(type: string, payload: Record<string, unknown>, patch: Patch<NotificationData>): Promise<void> {
    const key = `${type}:${Math.random().toString(36).slice(2)}`;
    this.state.applyOptimistic(key, patch);
    try {
      const reply = (await this.client.request<{ unread_count?: number }>(type, payload)) ?? {};
      this.state.confirmUpdate(key);
      const count = reply.unread_count;
      if (typeof count === "number" && Number.isFinite(count)) this.state.setBase((s) => ({ ...s, unread: count }));
      this.lastError = null;
    } catch (err) {
      this.state.rollbackUpdate(key);
      this.lastError = err as RealtimeError;
      this.changedNow();
      throw err;
    }
  }

  protected build(): NotificationsSnapshot {
    const view = this.state.view;
    return { notifications: view.items, unreadCount: view.unread, status: { ...this.statuses }, lastError: this.lastError };
  }
}
