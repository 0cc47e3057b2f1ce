/** Notification bell: unread badge and a list with read / dismiss / read-all (optimistic). */

import { useState } from "react";
import { useNotifications } from "../react/hooks";
import { ago } from "./format";
import { useRealtime } from "../react/context";

export function NotificationBell() {
  const { notifications, unreadCount, markAsRead, markAllRead, dismiss, status, lastError } = useNotifications();
  const { client } = useRealtime();
  const [open, setOpen] = useState(true);
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
      </header>
      {unavailable !== null ? (
        <p className="muted">{unavailable.code === "unauthenticated" ? "Sign in to see your notifications." : `Notifications unavailable (${unavailable.code}).`}</p>
      ) : null}
      {lastError !== null ? <p className="warn">Could not update ({lastError.code}); undone.</p> : null}
      {open ? (
        <ul className="notifications" data-testid="notification-list">
          {notifications.length === 0 && unavailable === null ? <li className="muted">Nothing yet.</li> : null}
          {notifications.map((n) => (
            <li key={n.id} className={`n ${n.read_at === null ? "unread" : "read"} p-${n.priority}`} data-testid={`notification-${n.id}`} data-read={n.read_at === null ? "false" : "true"}>
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
