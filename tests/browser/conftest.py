"""Fixtures of the browser end-to-end tests: real headless Chromium (Debian's), driven by Playwright.

Playwright's pip package ships its driver only; the browser is the system Chromium
(`scripts/ensure-chromium.sh` installs it). Nothing is downloaded. A missing Chromium
or a failed client build fails the tests, never skips them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client as DjangoClient
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from tests.support.servers import ROOT, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATIC_CLIENT = ROOT / "realtime_project" / "static" / "client"
ARTIFACTS = ROOT / "test-artifacts"
T = TypeVar("T")
#: Generous waits for UI assertions: the machine may be busy (2 cores shared by parallel
#: suites). Timed budgets (reconnect within 5 s) are asserted separately, with a clock.
expect.set_options(timeout=15_000)
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".map": "application/json"}


@pytest.fixture(scope="session")
def client_bundle() -> Path:
    """Build the dashboard bundle from this tree (npm ci when needed, esbuild)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-client.sh")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(f"client build failed:\n{result.stdout}\n{result.stderr}")
    bundle = STATIC_CLIENT / "dashboard.js"
    assert bundle.is_file(), f"{bundle} missing after the build"
    return STATIC_CLIENT


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (apt-get install chromium)")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def serve_bundle(context: BrowserContext, bundle_dir: Path) -> None:
    """Answer /static/client/* from the fresh build (the server's own static serving is tested separately)."""

    def handle(route: Route) -> None:
        name = route.request.url.split("/static/client/", 1)[1].split("?", 1)[0]
        path = bundle_dir / name
        if not path.is_file():
            route.fulfill(status=404, body="not built")
            return
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        route.fulfill(status=200, body=path.read_bytes(), content_type=content_type)

    context.route("**/static/client/**", handle)


@pytest.fixture
def new_context(browser: Browser, client_bundle: Path) -> Iterator[Callable[..., BrowserContext]]:
    """`new_context(server, session=None, **options)`: a browser context serving the fresh
    client bundle, signed in if a session key is given (closed at teardown)."""
    contexts: list[BrowserContext] = []

    def make(server: ServerProcess, session: str | None = None, **options: Any) -> BrowserContext:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
        contexts.append(context)
        serve_bundle(context, client_bundle)
        if session is not None:
            context.add_cookies([{"name": "sessionid", "value": session, "url": server.http_url}])
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def new_page(new_context: Callable[..., BrowserContext]) -> Callable[..., Page]:
    """`new_page(server, session=None, context=None)`: a page on the dashboard, signed in if
    a session key is given (in `context` when given)."""

    def make(server: ServerProcess, session: str | None = None, context: BrowserContext | None = None) -> Page:
        if context is None:
            context = new_context(server, session)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.http_url}/")
        page.wait_for_selector("[data-testid=connection-status]")
        page.set_default_timeout(15_000)
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    return make


def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run sync Django code off this thread: Playwright's sync API keeps an event loop
    current here, and Django's ORM (and `publish()`) refuse to run under one."""

    def call() -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(30)


def _create_user_session(username: str) -> tuple[int, str]:
    user = get_user_model().objects.create_user(username=username, password=f"pw-{username}-123")
    django_client = DjangoClient()
    django_client.force_login(user)
    return int(user.pk), django_client.cookies["sessionid"].value


@pytest.fixture
def signed_in_user() -> tuple[int, str]:
    """A user in the test database and a Django session key for it (the browser's cookie)."""
    return in_thread(_create_user_session, "alice")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
