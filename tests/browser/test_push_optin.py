"""Web Push in real headless Chromium: the opt-in button, the service worker served by
Django, a push decrypted by the local push service delivered to that worker, the click,
battery mode, and the preferences page.

Headless Chromium's own `pushManager.subscribe()` talks to Google's push service, which
this machine cannot reach; the page's subscribe/getSubscription are therefore answered
with a subscription of the local push service (keys made by it), and the decrypted push
is handed to the real service worker through the DevTools protocol
(`ServiceWorker.deliverPushMessage`), as the browser's push client would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from notifications import api as notifications_api
from notifications.models import Delivery, PushSubscription
from realtime_project.gateway.api import online_user_ids
from tests.browser.conftest import in_thread, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STUB = """
(() => {
  const info = %s;
  let current = null;
  const make = () => ({
    endpoint: info.endpoint, expirationTime: null, options: { userVisibleOnly: true },
    toJSON: () => info, getKey: () => null,
    unsubscribe: async () => { current = null; return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.__subscribedWith = { userVisibleOnly: options.userVisibleOnly, key: Array.from(key) };
    current = make();
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
  const sleep = localStorage.getItem("testBatterySleepMs");
  if (sleep !== null) localStorage.setItem("realtimeBatterySleepMs", sleep);
})();
"""


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0, page: Page | None = None) -> Any:
    """Poll `check` (a page, when given, keeps Playwright's events flowing meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def push_server(live_server_factory: Any, redis_settings: Any, redis_url: str, key_prefix: str, vapid_pem: str) -> Any:
    redis_settings.NOTIFICATIONS = {
        "VAPID_PRIVATE_KEY": vapid_pem,
        "PUSH_ALLOW_INSECURE": True,
        "PUSH_ALLOW_PRIVATE": True,
        "PUSH_TIMEOUT": 2.0,
    }
    extra = {
        "NOTIFICATIONS_VAPID_PRIVATE_KEY": vapid_pem,
        "NOTIFICATIONS_PUSH_ALLOW_INSECURE": "1",
        "NOTIFICATIONS_PUSH_ALLOW_PRIVATE": "1",
    }
    return live_server_factory(server="uvicorn", redis=redis_url, key_prefix=key_prefix, extra=extra)


@pytest.fixture
def push_context(new_context: Callable[..., BrowserContext]) -> Callable[..., BrowserContext]:
    def make(server: Any, session: str, subscription: dict[str, Any], battery_ms: int | None = None) -> BrowserContext:
        context = new_context(server, session, permissions=["notifications"])
        if battery_ms is not None:
            context.add_init_script(f"localStorage.setItem('testBatterySleepMs', '{battery_ms}');")
        context.add_init_script(STUB % json.dumps(subscription))
        return context

    return make


def open_dashboard(new_page: Any, server: Any, context: BrowserContext) -> Page:
    page = new_page(server, context=context)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")
    return page


def enable_push(page: Page, user_id: int) -> None:
    expect(page.get_by_test_id("push-optin")).to_have_attribute("data-status", "off")
    # Never prompted on load: no service worker until the user asks.
    assert page.evaluate("async () => (await navigator.serviceWorker.getRegistrations()).length") == 0
    page.get_by_test_id("push-enable").click()
    expect(page.get_by_test_id("push-optin")).to_have_attribute("data-status", "on")
    wait_for(lambda: in_thread(lambda: PushSubscription.objects.filter(user_id=user_id).exists()), "the subscription")


def test_opt_in_service_worker_push_and_click(
    push_server: Any,
    push_service: Any,
    push_context: Any,
    new_page: Any,
    signed_in_user: tuple[int, str],
) -> None:
    user_id, session = signed_in_user
    sub = push_service.new_subscription()
    context = push_context(push_server, session, sub.info())
    page = open_dashboard(new_page, push_server, context)
    enable_push(page, user_id)
    script = page.evaluate("async () => (await navigator.serviceWorker.getRegistration('/')).active.scriptURL")
    assert script == f"{push_server.http_url}/sw.js"
    public_key = page.evaluate("async () => (await (await fetch('/api/notifications/push/')).json()).public_key")
    import base64

    key = base64.urlsafe_b64decode(public_key + "=" * (-len(public_key) % 4))
    assert page.evaluate("() => window.__subscribedWith") == {"userVisibleOnly": True, "key": list(key)}

    # An urgent notification: pushed even though this page has an open socket.
    result = in_thread(
        notifications_api.send,
        user_id,
        {
            "type": "security_warning",
            "title": "New sign-in from Lisbon",
            "body": "Chrome on Linux",
            "priority": "urgent",
        },
    )
    nid = f"n:{result.notification.pk}"
    [received] = wait_for(lambda: push_service.messages(sub), "the push at the push service")
    message = received.json
    assert (message["title"], message["body"], message["url"]) == (
        "New sign-in from Lisbon",
        "Chrome on Linux",
        f"/?notification={nid}",
    )

    # The browser's push client hands the decrypted message to the service worker.
    cdp = context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    registration_id = wait_for(
        lambda: next((r["registrationId"] for r in registrations if r["scopeURL"] == f"{push_server.http_url}/"), None),
        "the registration",
        page=page,
    )
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": push_server.http_url, "registrationId": registration_id, "data": received.text},
    )
    shown = wait_for(
        lambda: page.evaluate(
            "async () => (await (await navigator.serviceWorker.ready).getNotifications())"
            ".map(n => [n.title, n.body, n.tag, n.requireInteraction])"
        ),
        "the notification shown by the service worker",
    )
    assert shown == [["New sign-in from Lisbon", "Chrome on Linux", nid, True]]
    wait_for(
        lambda: in_thread(lambda: Delivery.objects.filter(channel="push", state="delivered").exists()), "the receipt"
    )

    # A click focuses the open dashboard on that notification, which becomes read.
    worker = wait_for(lambda: context.service_workers[0] if context.service_workers else None, "the worker", page=page)
    url = worker.evaluate(
        "async () => { const [n] = await self.registration.getNotifications();"
        " return self.__notifications.openNotification(n.data); }"
    )
    assert url == f"{push_server.http_url}/?notification={nid}"
    item = page.get_by_test_id(f"notification-{nid}")
    expect(item).to_have_attribute("data-focused", "true")
    expect(item).to_have_attribute("data-read", "true")
    row = in_thread(lambda: Delivery.objects.get(channel="push", notification_id=result.notification.pk))
    assert row.state == "delivered" and row.clicked_at is not None
    screenshot(page, "push-opt-in")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_battery_mode_sleeps_on_push_and_recovers_with_since(
    push_server: Any,
    push_service: Any,
    push_context: Any,
    new_page: Any,
    signed_in_user: tuple[int, str],
) -> None:
    user_id, session = signed_in_user
    sub = push_service.new_subscription()
    context = push_context(push_server, session, sub.info(), battery_ms=300)
    page = open_dashboard(new_page, push_server, context)
    enable_push(page, user_id)
    wait_for(lambda: in_thread(online_user_ids, [user_id]) == {user_id}, "presence of the open page")
    page.evaluate(
        """() => { Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "sleeping")
    wait_for(lambda: in_thread(online_user_ids, [user_id]) == set(), "the gateway to see the socket gone")
    # Not urgent: pushed only because the page sleeps (no open socket).
    result = in_thread(
        notifications_api.send,
        user_id,
        {"type": "payment_received", "title": "Payment received: 49 USD", "priority": "high"},
    )
    nid = f"n:{result.notification.pk}"
    [received] = wait_for(lambda: push_service.messages(sub), "the push while asleep")
    assert received.json["title"] == "Payment received: 49 USD"
    expect(page.get_by_test_id(f"notification-{nid}")).to_have_count(0)
    page.evaluate(
        """() => { Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id(f"notification-{nid}")).to_be_visible()
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_preferences_page_from_the_dashboard(
    push_server: Any,
    push_service: Any,
    push_context: Any,
    new_page: Any,
    signed_in_user: tuple[int, str],
) -> None:
    user_id, session = signed_in_user
    context = push_context(push_server, session, push_service.new_subscription().info())
    page = open_dashboard(new_page, push_server, context)
    page.get_by_test_id("notification-settings").click()
    expect(page.get_by_role("heading", name="Notification settings")).to_be_visible()
    expect(page.get_by_test_id("price_alert-push")).to_be_checked()
    page.get_by_test_id("price_alert-push").uncheck()
    page.get_by_test_id("security_warning-email").check()
    page.get_by_test_id("time_zone").select_option("Europe/Paris")
    page.get_by_test_id("quiet_start").fill("22:00")
    page.get_by_test_id("quiet_end").fill("07:00")
    page.get_by_test_id("mute").select_option("60")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("saved")).to_be_visible()
    expect(page.get_by_test_id("price_alert-push")).not_to_be_checked()
    expect(page.get_by_test_id("muted-until")).to_be_visible()
    from notifications.services.preferences import preferences_get

    prefs = in_thread(preferences_get, user_id=user_id)
    assert prefs["types"]["price_alert"]["push"] is False and prefs["types"]["security_warning"]["email"] is True
    assert prefs["time_zone"] == "Europe/Paris" and prefs["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    screenshot(page, "notification-preferences")
    page.get_by_test_id("back-to-dashboard").click()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "open")
