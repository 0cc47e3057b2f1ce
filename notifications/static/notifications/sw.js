/* Service worker of the dashboard (served at /sw.js, scope "/"): shows Web Push messages.
 *
 * A push carries a small JSON object (docs/notifications.md "Web Push payload"):
 * {v, id, type, title, body, priority, icon, url, tag, created_at, receipt}. It is shown
 * with its title, body and icon; a click focuses (or opens) the dashboard on that
 * notification. Showing and clicking post the signed `receipt` back, which marks the
 * delivery `delivered` (the token is the credential: a worker has no CSRF token).
 */
"use strict";

const RECEIPT_URL = "/api/notifications/push/receipt/";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function parseMessage(data) {
  if (!data) return null;
  try {
    const message = data.json();
    return message && typeof message === "object" ? message : null;
  } catch (err) {
    return null;
  }
}

function sendReceipt(token, event) {
  if (typeof token !== "string" || token === "") return Promise.resolve(false);
  return fetch(RECEIPT_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, event }),
    credentials: "omit",
    keepalive: true,
  })
    .then((response) => response.ok)
    .catch(() => false);
}

async function showPush(message) {
  const m = message || { title: "New notification", url: "/" };
  await self.registration.showNotification(String(m.title || "New notification"), {
    body: String(m.body || ""),
    icon: m.icon || undefined,
    badge: m.icon || undefined,
    tag: String(m.tag || m.id || "notification"),
    timestamp: typeof m.created_at === "number" ? m.created_at : Date.now(),
    requireInteraction: m.priority === "urgent",
    data: { id: m.id || null, url: m.url || "/", receipt: m.receipt || null },
  });
  await sendReceipt(m.receipt, "shown");
}

async function openNotification(data) {
  const d = data || {};
  const url = new URL(d.url || "/", self.location.origin);
  if (url.origin !== self.location.origin) url.href = self.location.origin + "/";
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
  if (open !== undefined) {
    // The page is open: tell it which notification to show, then bring it forward.
    open.postMessage({ type: "open-notification", id: d.id, url: url.href });
    if ("focus" in open) await open.focus().catch(() => undefined);
  } else {
    await self.clients.openWindow(url.href);
  }
  await sendReceipt(d.receipt, "clicked");
  return url.href;
}

self.addEventListener("push", (event) => {
  event.waitUntil(showPush(parseMessage(event.data)));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openNotification(event.notification.data));
});

// For the browser tests: the handlers, callable without a real push service or click.
self.__notifications = { showPush, openNotification, parseMessage };
