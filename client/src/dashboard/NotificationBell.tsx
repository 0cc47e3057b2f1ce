/** Notification bell: unread badge and a list with read / dismiss / read-all (optimistic). */

import { useEffect, useRef, useState } from "react";
import type { PushOptIn } from "../core/push";
import { useNotifications } from "../react/hooks";
import { ago } from "./format";
import { PushToggle } from "./PushToggle";
import { useRealtime } from "../react/context";

/** The notification a push click (or a `?notification=` link from an email) asked to show. */
function useRequestedNotification(): string | null {
  const [id, setId] = useState<string | null>(() => (typeof window === "undefined" ? null : new URLSearchParams(window.location.search).get("notification")));
  useEffect(() => {
    const worker = typeof navigator === "undefined" ? undefined : navigator.serviceWorker;
    if (worker === undefined) return;
    const onMessage = (event: MessageEvent) => {
      const data = event.data as { type?: string; id?: unknown } | null;
      if (data?.type === "open-notification" && typeof data.id === "string") setId(data.id);
    };
    worker.addEventListener("message", onMessage);
    return () => worker.removeEventListener("message", onMessage);
  }, []);
  return id;
}

export function NotificationBell({ push }: { push?: PushOptIn }) {
  const { notifications, unreadCount, markAsRead, markAllRead, dismiss, status, lastError } = useNotifications();
  const { client } = useRealtime();
  const [open, setOpen] = useState(true);
  const requested = useRequestedNotification();
  const handled = useRef<string | null>(null);
  const focused = requested !== null && notifications.some((n) => n.id === requested) ? requested : null;
  useEffect(() => {
    // Opened on a notification: show it, and it counts as read (cancels a pending email).
    if (focused === null || handled.current === focused) return;
    handled.current = focused;
    setOpen(true);
    const item = notifications.find((n) => n.id === focused);
    if (item !== undefined && item.read_at === null) void markAsRead(focused).catch(() => undefined);
    document.querySelector(`[data-testid="notification-${focused}"]`)?.scrollIntoView?.({ block: "center" });
  }, [focused, notifications, markAsRead]);
  const unavailable = status.notifications.status === "error" ? status.notifications.error : null;
  const ignore = () => undefined; // failures are rolled back and shown through lastError
  return (
    <section className="card bell" aria-labelledby="bell-title">
      <header>
        <button className="bell-button" onClick={() => setOpen(!open)} aria-expanded={open} data-testid="bell">
          <BellIcon />
          <span id="bell-title">Notifications</span>
          <span className={`badge ${unreadCount > 0 ? "" : "zero"}`} data-testid="unread-count" aria-label={`${unreadCount} unread`}>
            {unreadCount}
          </span>
        </button>
        {unreadCount > 0 ? (
          <button className="link" onClick={() => void markAllRead().catch(ignore)} data-testid="mark-all-read">
            Mark all read
          </button>
        ) : null}
        <a className="link" href="/notifications/preferences/" data-testid="notification-settings">
          Settings
        </a>
      </header>
      {push !== undefined ? <PushToggle push={push} /> : null}
      {unavailable !== null ? (
        <p className="muted">{unavailable.code === "unauthenticated" ? "Sign in to see your notifications." : `Notifications unavailable (${unavailable.code}).`}</p>
      ) : null}
      {lastError !== null ? <p className="warn">Could not update ({lastError.code}); undone.</p> : null}
      {open ? (
        <ul className="notifications" data-testid="notification-list">
          {notifications.length === 0 && unavailable === null ? <li className="muted">Nothing yet.</li> : null}
          {notifications.map((n) => (
            <li
              key={n.id}
              className={`n ${n.read_at === null ? "unread" : "read"} p-${n.priority}${n.id === focused ? " focused" : ""}`}
              data-testid={`notification-${n.id}`}
              data-read={n.read_at === null ? "false" : "true"}
              data-focused={n.id === focused ? "true" : undefined}
            >
              <div className="n-main">
                <strong>{n.title}</strong>
                {n.body ? <span className="n-body">{n.body}</span> : null}
                <span className="muted">
                  {n.id.startsWith("a:") ? "announcement · " : ""}
                  {ago(n.created_at, client.serverNow())}
                </span>
              </div>
              <div className="n-actions">
                {n.read_at === null ? (
                  <button className="link" onClick={() => void markAsRead(n.id).catch(ignore)} data-testid={`mark-read-${n.id}`}>
                    Mark read
                  </button>
                ) : null}
                <button className="link" onClick={() => void dismiss(n.id).catch(ignore)} aria-label="Dismiss">
                  ✕
                </button>
              </div>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}

/** An inline icon: emoji fonts are not installed everywhere (headless Chromium has none). */
function BellIcon() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
      <path d="M13.73 21a2 2 0 0 1-3.46 0" />
    </svg>
  );
}
