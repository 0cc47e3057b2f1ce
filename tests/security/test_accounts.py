"""Site accounts (issue #12, finding 1): allauth's pages under /accounts/, API tokens.

Django's test client against the real URL configuration and PostgreSQL: sign-in,
sign-out by POST only, sign-up and its switch, password change and reset by email,
allauth's rate limits, and `POST /api/auth/token/` with its revoke endpoint.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-1"


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)


def signed_in(client: Client) -> int | None:
    """The user id Django sees for this client's session (None: anonymous)."""
    response = client.get("/")
    user = response.wsgi_request.user
    return int(user.pk) if user.is_authenticated else None


def test_login_url_is_the_account_sign_in_page() -> None:
    assert settings.LOGIN_URL == "/accounts/login/"
    page = Client().get("/accounts/login/?next=/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="login"' in html and 'name="password"' in html
    assert 'data-testid="siwe-sign-in"' in html  # Sign-In with Ethereum, the second way in
    assert 'name="next" value="/"' in html
    # The API's private endpoints send anonymous users here too.
    assert Client().get("/notifications/preferences/").url.startswith("/accounts/login/")


def test_dashboard_links_to_sign_in_and_back(alice: Any) -> None:
    html = Client().get("/").content.decode()
    assert 'data-login-url="/accounts/login/?next=/"' in html
    client = Client()
    response = client.post("/accounts/login/", {"login": "alice", "password": PASSWORD, "next": "/"})
    assert response.status_code == 302 and response.url == "/"
    assert signed_in(client) == alice.pk
    page = client.get("/").content.decode()
    assert 'data-authenticated="true"' in page and 'data-logout-url="/accounts/logout/"' in page


def test_sign_in_by_email_and_wrong_password(alice: Any) -> None:
    client = Client()
    wrong = client.post("/accounts/login/", {"login": "alice", "password": "nope-nope-nope"})
    assert wrong.status_code == 200 and signed_in(client) is None
    assert "not correct" in wrong.content.decode()
    client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})
    assert signed_in(client) == alice.pk


def test_sign_out_is_a_post(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    page = client.get("/accounts/logout/")
    assert page.status_code == 200 and signed_in(client) == alice.pk  # a confirmation page, not a sign-out
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response.url == "/"
    assert signed_in(client) is None


def test_sign_up_creates_an_account_and_can_be_switched_off(settings: Any) -> None:
    client = Client()
    form = {"email": "bob@example.com", "username": "bob", "password1": PASSWORD, "password2": PASSWORD}
    response = client.post("/accounts/signup/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    bob = get_user_model().objects.get(username="bob")
    assert bob.check_password(PASSWORD) and signed_in(client) == bob.pk
    # Verification mail through Django's email backend.
    assert any("bob@example.com" in m.to for m in mail.outbox)

    # Django's password validators apply: a common password is refused.
    weak = Client().post(
        "/accounts/signup/",
        {**form, "email": "d@example.com", "username": "dee", "password1": "password123", "password2": "password123"},
    )
    assert weak.status_code == 200 and "too common" in weak.content.decode()

    settings.ACCOUNTS_SIGNUP_OPEN = False
    closed = Client()
    page = closed.get("/accounts/signup/")
    assert "Sign Up Closed" in page.content.decode()
    closed.post("/accounts/signup/", {**form, "email": "carol@example.com", "username": "carol"})
    assert not get_user_model().objects.filter(username="carol").exists()
    assert 'data-testid="sign-up"' not in closed.get("/accounts/login/").content.decode()


def test_password_change(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    new = "a-brand-new-password-2"
    response = client.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)
    assert signed_in(client) == alice.pk  # this browser stays signed in


def test_password_reset_by_email(alice: Any) -> None:
    client = Client()
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", message.body)
    assert link, message.body
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    new = "reset-password-works-3"
    done = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.group(1),
        {"password1": new, "password2": new},
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)


def test_an_unreachable_mail_server_is_no_500(alice: Any, settings: Any, caplog: Any) -> None:
    from tests.support.smtp_server import closed_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    client = Client()
    form = {"email": "gus@example.com", "username": "gus", "password1": PASSWORD, "password2": PASSWORD}
    assert client.post("/accounts/signup/", form).status_code == 302  # the account exists; the mail can be resent
    assert get_user_model().objects.filter(username="gus").exists()
    reset = client.post("/accounts/password/reset/", {"email": "alice@example.com"}, follow=True)
    assert reset.status_code == 200
    assert "could not send the email" in reset.content.decode()
    assert "account email password_reset_key not sent" in caplog.text


def test_sign_in_is_rate_limited_per_account(alice: Any) -> None:
    for _ in range(5):
        Client().post("/accounts/login/", {"login": "alice", "password": "wrong-wrong-wrong"})
    client = Client()
    blocked = client.post("/accounts/login/", {"login": "alice", "password": PASSWORD})
    assert "Too many failed login attempts" in blocked.content.decode()
    assert signed_in(client) is None


# --- API tokens ---------------------------------------------------------------------------


def test_token_endpoint_and_revoke(alice: Any) -> None:
    api = Client()
    response = api.post(
        "/api/auth/token/", {"username": "alice", "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"id": alice.pk, "username": "alice"}
    token = body["token"]
    assert Token.objects.get(user=alice).key == token
    # The same token again (one per user), and by email too.
    again = api.post(
        "/api/auth/token/", {"username": "alice@example.com", "password": PASSWORD}, content_type="application/json"
    )
    assert again.json()["token"] == token

    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    ticket = api.post("/api/ws-ticket/", **auth)
    assert ticket.status_code == 201 and ticket.json()["url"].startswith("/ws/?ticket=")

    revoked = api.post("/api/auth/token/revoke/", **auth)
    assert revoked.status_code == 200 and revoked.json() == {"revoked": True}
    assert not Token.objects.filter(user=alice).exists()
    # DRF: 403 "Invalid token" (session auth comes first, so no WWW-Authenticate challenge).
    assert api.post("/api/ws-ticket/", **auth).status_code in (401, 403)
    assert api.post("/api/auth/token/revoke/", **auth).status_code in (401, 403)


def test_token_endpoint_refuses_bad_credentials_and_limits_guessing(alice: Any) -> None:
    api = Client()
    post = lambda body: api.post("/api/auth/token/", body, content_type="application/json")  # noqa: E731
    assert post({"username": "alice"}).json()["code"] == "bad_request"
    bad = post({"username": "alice", "password": "wrong-wrong"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_credentials"
    alice.is_active = False
    alice.save()
    assert post({"username": "alice", "password": PASSWORD}).json()["code"] == "invalid_credentials"
    alice.is_active = True
    alice.save()
    for _ in range(4):
        post({"username": "alice", "password": "wrong-wrong"})
    # allauth's budget for this account is spent: the right password is refused too.
    limited = post({"username": "alice", "password": PASSWORD})
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"


def test_token_endpoints_are_in_the_openapi_schema() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    obtain = schema["paths"]["/api/auth/token/"]["post"]
    assert set(obtain["responses"]) >= {"200", "400", "429"}
    body = obtain["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][body]["required"]) == {"username", "password"}
    assert "post" in schema["paths"]["/api/auth/token/revoke/"]
