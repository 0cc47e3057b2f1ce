"""Django settings, all read from the environment with safe defaults.

Two modes (see README "Configuration"):
- embedded (no REDIS_URL): SQLite, in-memory channel layer and history, the beat
  schedule run inside the server process. Works offline with one command.
- production (REDIS_URL set, DATABASE_URL usually PostgreSQL): Redis channel layer,
  Redis history/presence, Celery broker, separate gateway/worker/beat processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext

# Django's generic classes (ModelAdmin[Model], ModelForm[Model]) subscriptable at run time,
# as mypy strict wants them written.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED = not REDIS_URL
#: Production mode: REDIS_URL is set (README "Configuration"). It refuses to start on an
#: insecure configuration: no strong SECRET_KEY, or DEBUG on (`realtime_project.security`).
PRODUCTION = not EMBEDDED

# Public: whoever knows it signs session cookies and WebSocket tickets as any user, so it
# is accepted only in embedded mode (a laptop, offline). Production refuses it.
DEV_SECRET_KEY = "dev-insecure-key-set-SECRET_KEY-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY") or ("" if PRODUCTION else DEV_SECRET_KEY)
if PRODUCTION:
    from realtime_project.security import refuse_insecure_production

    refuse_insecure_production(secret_key=SECRET_KEY, debug=DEBUG, dev_key=DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Site accounts (issue #12): sign-in, sign-up, password change/reset, rate limits.
    "allauth",
    "allauth.account",
    "realtime_project.accounts.apps.AccountsConfig",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "realtime_project.gateway.apps.GatewayConfig",
    "prices",
    "wallets",
    "notifications",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost, next to the views: a query failing because PostgreSQL is down → 503 + code.
    "realtime_project.db_outage.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "realtime_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "realtime_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "realtime_project.accounts.context.accounts",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "realtime_project.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
# A connection pool (psycopg_pool, through Django's own `pool` option) in the gateway
# processes: `manage.py serve` turns DB_POOL on. Without it,
# every database call (a session-cookie lookup, a ticket's user, a snapshot) opened and
# closed its own PostgreSQL connection, and a crowd of handshakes queued behind
# connection set-ups (issue #12: 13.8 s). Persistent connections (DB_CONN_MAX_AGE) are
# no answer under ASGI: each HTTP request runs in a thread of its own, whose connection
# would be left open. Celery workers (forked) and the other commands keep plain
# connections.
DB_POOL = env_bool("DB_POOL", False) and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if DB_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ.get("DB_POOL_MAX_SIZE", "8")),
        # PostgreSQL down: a request fails fast (503 database_unavailable), not after 10 s.
        # (Django checks a pooled connection before handing it out.)
        "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "2")),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the server, the embedded scheduler and a shell read while one writes.
    DATABASES["default"].setdefault("OPTIONS", {})
    # IMMEDIATE: a transaction takes the write lock when it begins, so one that read
    # first cannot fail with "database is locked" when it then writes.
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
    # End-to-end tests run the server in another process: it must see the test database.
    # One file per test run, so concurrent runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sign-up, password change and reset (allauth uses Django's validators).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "realtime_project" / "static"]

# --- Site accounts: django-allauth under /accounts/ (README "Accounts") -----------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_ADAPTER = "realtime_project.accounts.adapter.AccountAdapter"
#: Sign-up page (password and Sign-In with Ethereum): off = invitation-only site.
ACCOUNTS_SIGNUP_OPEN = env_bool("ACCOUNTS_SIGNUP_OPEN", True)
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# "mandatory" makes a new account confirm its address before it can sign in.
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False  # sign-out is a POST (a link or an <img> cannot sign you out)
ACCOUNT_SESSION_REMEMBER = None  # the "remember me" box decides
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
# allauth's rate limits (in the cache: Redis in production): failed sign-ins per client
# address and per account, resets, sign-ups. The token endpoint spends the same budget.
ACCOUNT_RATE_LIMITS = {
    "login_failed": os.environ.get("ACCOUNTS_LOGIN_FAILED_LIMIT", "10/m/ip,5/5m/key"),
    "login": "30/m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
}
# Behind a load balancer the client address is the last X-Forwarded-For hop it added.
ALLAUTH_TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# --- Email (password reset, verification; notifications' email) ------------------------
# EMAIL_URL: smtp://user:password@host:port (plain), smtp+tls://… (STARTTLS), smtps://…
# (implicit TLS) or console:// (print to the log). Without it the EMAIL_HOST family of
# variables (Django's own names) is read; with neither: console when embedded (a newcomer
# sees the reset link in the terminal), localhost:25 in production.
from realtime_project.mail import email_settings  # noqa: E402

EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if os.environ.get("EMAIL_URL") or not EMAIL_HOST:
    globals().update(
        email_settings(os.environ.get("EMAIL_URL") or ("console://" if EMBEDDED else "smtp://localhost:25"))
    )
else:
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587" if env_bool("EMAIL_USE_TLS", False) else "25"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    # A stuck SMTP server must not hold a worker: the attempt fails and is retried later.
    EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Realtime markets <notifications@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Channels -------------------------------------------------------------------------
if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}}
else:
    # Channels groups over Redis pub/sub (issue #10): Redis pushes each publication to
    # the gateways that joined its group, which read them in batches
    # (realtime_project/gateway/hub/intake.py; the publish script PUBLISHes on the same
    # group channels). Pub/sub is at-most-once: gaps are repaired from history (seq).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 5}],
                "prefix": os.environ.get("CHANNEL_PREFIX", "asgi"),
            },
        }
    }

# --- Caches (single-use tickets, throttles) ------------------------------------------
if EMBEDDED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_PREFIX", "rt"),
        }
    }

# --- The gateway: one namespaced setting (defaults in realtime_project/gateway/conf.py) --
REALTIME = {
    # Every other key comes from its default or a REALTIME_<KEY> environment variable
    # (see realtime_project/gateway/conf.py and the README's configuration table).
    "HISTORY_REDIS_URL": REDIS_URL,
}

# --- REST framework ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every error has a `code` (realtime_project/api_errors.py).
    "EXCEPTION_HANDLER": "realtime_project.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Realtime platform API",
    "DESCRIPTION": "REST API of the real-time crypto platform. The WebSocket protocol is "
    "documented in docs/protocol.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ----------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
# django-celery-beat's DatabaseScheduler behind a lease in Redis: two beats may run, one
# schedules (realtime_project/beat.py).
CELERY_BEAT_SCHEDULER = "realtime_project.beat:LeasedScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
# Tests give each real worker its own queue so concurrent runs never steal tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
# The price tick keeps its aggregation state (quotes, TWAP, change filter) in the worker
# process: in production route it to one dedicated worker (`-Q prices -c 1`).
PRICES_QUEUE = os.environ.get("PRICES_QUEUE", "")
CELERY_TASK_ROUTES = {"prices.tasks.tick": {"queue": PRICES_QUEUE}} if PRICES_QUEUE else {}

# --- Logging: one JSON line per event in production, readable lines in development -----
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG or EMBEDDED else "json")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "realtime_project.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
    },
}

# --- HTTPS in production (`manage.py check --deploy` passes; docs/deployment.md) ---------
if PRODUCTION:
    # TLS ends at the load balancer, which tells Django with X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe health over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
