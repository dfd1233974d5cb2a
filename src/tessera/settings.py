"""Django settings, read from the environment (see README: Configuration)."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured

from tessera.core.dbfile import default_sqlite_path


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


BASE_DIR = Path(__file__).resolve().parent
DEMO = _flag("TESSERA_DEMO")
TESTING = _flag("TESSERA_TESTING")
DEBUG = _flag("TESSERA_DEBUG", default=DEMO)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or DEMO or TESTING:
        # Only for local use: demo data and test runs never hold real secrets.
        SECRET_KEY = "insecure-local-only-key-do-not-use-in-production"  # noqa: S105
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set (it signs sessions and CSRF tokens); a local trial needs "
            "none: `tessera demo`, and any command run in the demo's directory."
        )

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Its templates and static files: the API docs load Swagger UI from Tessera itself
    # (the copy pinned with django-ninja), never from a CDN.
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "django_ratelimit",
    "csp",
    "django_prometheus",
    "tessera.core",
    "tessera.crm",
    "tessera.ledger",
    "tessera.notifications",
    "tessera.billing",
    "tessera.loyalty",
    "tessera.events",
    "tessera.api",
    "tessera.portal",
    "tessera.backoffice",
]

MIDDLEWARE = [
    # First and last (django-prometheus's pair): the latency they measure is the whole stack.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before anything that may answer (the HTTPS redirect too), so every response and every
    # log line of the request carries its id.
    "tessera.core.requestid.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Last, so that they wrap the API view itself: they see the raw body and the final
    # response. The problem layer is innermost so idempotent replays store what clients get.
    "tessera.api.middleware.ApiWriteMiddleware",
    "tessera.api.middleware.ApiProblemMiddleware",
    # Only observes (by view and status), changes no response: innermost for the view name.
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "tessera.urls"
WSGI_APPLICATION = "tessera.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tessera.portal.context.portal",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------
# The same rule the `tessera` command applies before settings load (tessera/cli.py).
SQLITE_PATH = default_sqlite_path(os.environ)
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}"
_db = dj_database_url.parse(DATABASE_URL)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        # IMMEDIATE: a writer takes the write lock at BEGIN, so concurrent writers queue on
        # the busy timeout instead of failing half-way with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
    }
elif _db["ENGINE"] in {"django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"}:
    _db["ENGINE"] = "django.db.backends.postgresql"
    _db["CONN_MAX_AGE"] = int(os.environ.get("DATABASE_CONN_MAX_AGE", "600"))
    _db["CONN_HEALTH_CHECKS"] = True
    if os.environ.get("DATABASE_PREPARED_STATEMENTS", "1") != "0":
        # Parameters bound by the server, and a statement run five times on a connection
        # prepared there: PostgreSQL then plans it once instead of on every call. Planning
        # was most of the server's CPU on the order path (a wallet order: 2.2 ms of
        # PostgreSQL CPU before, 1.3 ms after; see bench/README.md). Set
        # DATABASE_PREPARED_STATEMENTS=0 behind a pooler in transaction mode (PgBouncer
        # before 1.21), which cannot keep a prepared statement on its connection.
        _db.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- background jobs ----------------------------------------------------------------------
# TESSERA_TASKS_BACKEND picks where jobs wait. "database" (the default) writes the job row in
# the caller's transaction: a transactional outbox, so no committed change loses its job.
# "rq" keeps jobs in Redis (TESSERA_RQ_URL) for volumes the jobs table should not carry: a
# job is pushed when its transaction commits, so a crash in between loses it (docs/deploy.md).
TASKS_BACKEND = os.environ.get("TESSERA_TASKS_BACKEND", "database").strip().lower()
TESSERA_RQ_URL = os.environ.get("TESSERA_RQ_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {"default": {"URL": TESSERA_RQ_URL, "DEFAULT_TIMEOUT": 600}}
TASKS: dict[str, dict[str, object]]
if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif TASKS_BACKEND == "rq":
    TASKS = {
        "default": {
            "BACKEND": "tessera.core.rq.OnCommitRQBackend",
            "QUEUES": list(RQ_QUEUES),
        }
    }
    INSTALLED_APPS = [*INSTALLED_APPS, "django_rq"]
else:
    raise ImproperlyConfigured(
        f"TESSERA_TASKS_BACKEND must be 'database' or 'rq', not {TASKS_BACKEND!r}"
    )

# Periodic jobs the worker enqueues: name -> (task, interval in seconds).
TESSERA_PERIODIC_TASKS: dict[str, tuple[str, int]] = {
    "expire_points": ("tessera.loyalty.tasks.expire_points_task", 3600),
    "prune_idempotency_keys": ("tessera.backoffice.tasks.prune_idempotency_keys_task", 3600),
    "reconcile_payments": ("tessera.billing.tasks.reconcile_task", 600),
    "expire_checkout_holds": ("tessera.events.tasks.expire_holds_task", 60),
    "requeue_stalled_emails": ("tessera.notifications.tasks.requeue_stalled_task", 60),
}

# --- events ---------------------------------------------------------------------------------
# How long a checkout awaiting 3-D Secure (or a payment in flight) holds its places.
TESSERA_CHECKOUT_HOLD_MINUTES = int(os.environ.get("TESSERA_CHECKOUT_HOLD_MINUTES", "15"))
# Who issues the invoices (printed on every invoice and credit note).
TESSERA_SELLER_NAME = os.environ.get("TESSERA_SELLER_NAME", "Tessera")
TESSERA_SELLER_ADDRESS = os.environ.get("TESSERA_SELLER_ADDRESS", "")
# Signs ticket codes (a base64 Ed25519 seed); unset, a key derived from SECRET_KEY does.
TESSERA_TICKET_SIGNING_KEY = os.environ.get("TESSERA_TICKET_SIGNING_KEY") or None

# --- email ---------------------------------------------------------------------------------
EMAIL_URL = os.environ.get("EMAIL_URL") or (
    "console://" if (DEBUG or DEMO) else "smtp://localhost:25"
)
_email = dj_email_url.parse(EMAIL_URL)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = int(_email.get("EMAIL_PORT") or 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = int(_email.get("EMAIL_TIMEOUT") or 15)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Tessera <no-reply@tessera.local>")
TESSERA_ADMIN_EMAIL = os.environ.get("TESSERA_ADMIN_EMAIL", "admin@tessera.local")
# Failed sends are retried with exponential back-off: base * 2**(attempt-1), capped.
EMAIL_MAX_ATTEMPTS = int(os.environ.get("TESSERA_EMAIL_MAX_ATTEMPTS", "6"))
EMAIL_RETRY_BASE_SECONDS = float(os.environ.get("TESSERA_EMAIL_RETRY_BASE_SECONDS", "30"))
EMAIL_RETRY_MAX_SECONDS = float(os.environ.get("TESSERA_EMAIL_RETRY_MAX_SECONDS", "3600"))
# An email whose send job was lost (a worker killed mid-send) is enqueued again after this.
EMAIL_STALLED_SECONDS = float(os.environ.get("TESSERA_EMAIL_STALLED_SECONDS", "900"))

# --- Stripe --------------------------------------------------------------------------------
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
# Seconds to wait for each answer from Stripe (the SDK retries twice with the same key).
STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "20"))

# --- API -----------------------------------------------------------------------------------
# A request whose first run has held its idempotency key longer than this is presumed
# crashed, and a retry may take the key over.
IDEMPOTENCY_LOCK_SECONDS = int(os.environ.get("TESSERA_IDEMPOTENCY_LOCK_SECONDS", "300"))
IDEMPOTENCY_RETENTION_HOURS = int(os.environ.get("TESSERA_IDEMPOTENCY_RETENTION_HOURS", "24"))
API_PAGE_SIZE_DEFAULT = 20
API_PAGE_SIZE_MAX = 100

# --- i18n, static --------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch"), ("es", "Español")]
TESSERA_LOCALE = os.environ.get("TESSERA_LOCALE", "en_US")
TESSERA_DEFAULT_REGION = os.environ.get("TESSERA_DEFAULT_REGION", "US").upper()
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None  # only for `collectstatic`
# Serve straight from the apps' static folders, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- portal: sign-in, sessions, rate limits, content security ------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # Single-use sign-in links (django-sesame): a token in the link stands for the password.
    "sesame.backends.ModelBackend",
]
LOGIN_URL = "/signin"
SESAME_MAX_AGE = int(os.environ.get("TESSERA_SIGNIN_LINK_MINUTES", "15")) * 60
SESAME_ONE_TIME = True
SESAME_TOKEN_NAME = "token"  # noqa: S105 - the query parameter's name, not a secret
SESSION_COOKIE_HTTPONLY = True
# Forms carry the CSRF token in a hidden field (htmx sends it from there): no script reads
# the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 14 * 24 * 3600
# Absolute links in emails; unset, they are built from the host of the request that asked.
TESSERA_SITE_URL = os.environ.get("TESSERA_SITE_URL", "").rstrip("/")
# Rate limits count in a cache every web process shares when one is configured: Redis by
# TESSERA_CACHE_URL (redis://host:6379/0). Without it each process counts on its own (the
# demo and tests run one), so N workers allow N times the limit; the README says so.
TESSERA_CACHE_URL = os.environ.get("TESSERA_CACHE_URL", "")
if TESSERA_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TESSERA_CACHE_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# django-ratelimit lists only memcached and django-redis as its shared caches; Django's own
# Redis backend increments atomically too, and the local-memory one is the documented
# single-process fallback above.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
RATELIMIT_VIEW = "tessera.portal.views.account.rate_limited"
# Sign-in requests: per address and per client.
TESSERA_SIGNIN_RATE_PER_EMAIL = os.environ.get("TESSERA_SIGNIN_RATE_PER_EMAIL", "5/h")
TESSERA_SIGNIN_RATE_PER_CLIENT = os.environ.get("TESSERA_SIGNIN_RATE_PER_CLIENT", "20/h")

# Stripe.js: Stripe's own copy, or the one the emulator serves when STRIPE_API_BASE is set.
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL") or (
    f"{os.environ['STRIPE_API_BASE'].rstrip('/')}/js.stripe.com/v3/"
    if os.environ.get("STRIPE_API_BASE")
    else "https://js.stripe.com/v3/"
)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


_STRIPE_ORIGINS = sorted(
    {_origin(STRIPE_JS_URL), "https://js.stripe.com", "https://api.stripe.com"}
    | ({_origin(os.environ["STRIPE_API_BASE"])} if os.environ.get("STRIPE_API_BASE") else set())
)
_MEDIA_ORIGINS = [
    o.strip() for o in os.environ.get("TESSERA_MEDIA_ORIGINS", "").split(",") if o.strip()
]
# Our own assets and Stripe's, nothing else: no inline script, no CDN.
CONTENT_SECURITY_POLICY = {
    # The API's interactive docs (Swagger UI) run an inline script of django-ninja's.
    "EXCLUDE_URL_PREFIXES": ["/api/v1/docs"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", *_STRIPE_ORIGINS],
        "frame-src": ["'self'", *_STRIPE_ORIGINS, "https://hooks.stripe.com"],
        "connect-src": ["'self'", *_STRIPE_ORIGINS],
        "img-src": ["'self'", "data:", "https://*.stripe.com"],
        "style-src": ["'self'"],
        # Activity videos play from wherever the program hosts them (https), or from the
        # origins named in TESSERA_MEDIA_ORIGINS (a local file server, in tests).
        "media-src": ["'self'", "https:", *_MEDIA_ORIGINS],
        "frame-ancestors": ["'self'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if not DEBUG and not TESTING:
    # Production. TESSERA_HTTPS: the site is reached over https (TLS here or at a proxy),
    # which turns on the redirect, HSTS and secure cookies. Unset, it follows
    # TESSERA_SECURE_COOKIES, which local plain-http stacks set to 0 (an e2e run, a bench):
    # insecure cookies mean plain http, and redirecting those to https would break them.
    TESSERA_HTTPS = _flag("TESSERA_HTTPS", default=_flag("TESSERA_SECURE_COOKIES", default=True))
    SESSION_COOKIE_SECURE = _flag("TESSERA_SECURE_COOKIES", default=TESSERA_HTTPS)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    if TESSERA_HTTPS:
        SECURE_SSL_REDIRECT = True
        # Probes and the metrics scraper talk plain http to the process itself.
        SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
        SECURE_HSTS_SECONDS = int(os.environ.get("TESSERA_HSTS_SECONDS", str(365 * 24 * 3600)))
        SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("TESSERA_HSTS_INCLUDE_SUBDOMAINS", default=True)
        # The preload directive asks browsers' built-in lists to hard-code https for the
        # whole registrable domain, subdomains included, for months after it is withdrawn:
        # that is the domain owner's decision, not the application's, so it is opt-in.
        # Without it Django's deploy check warns (security.W021) on every run; that warning
        # is the decision above, made deliberately, so it is silenced only while preload is
        # off (the other HSTS checks stay on).
        SECURE_HSTS_PRELOAD = _flag("TESSERA_HSTS_PRELOAD")
        if not SECURE_HSTS_PRELOAD:
            SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]
    # Only behind a proxy that sets X-Forwarded-Proto itself and drops the client's: trusted
    # without one, any client could claim https and skip the redirect.
    if _flag("TESSERA_TRUST_X_FORWARDED_PROTO"):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- security -------------------------------------------------------------------------------
# Response headers in every mode (the demo and tests see what production sends).
SECURE_CONTENT_TYPE_NOSNIFF = True  # a response is read as the type it says, never sniffed
SECURE_REFERRER_POLICY = "same-origin"  # full URLs (a sign-in link's token) stay on this site
X_FRAME_OPTIONS = "DENY"  # nothing here is framed, so no page can be clickjacked
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"  # no other site's window keeps a handle
# Rate limits (counted like the sign-in ones above, per process without TESSERA_CACHE_URL).
# Tests fire many checkouts from one key and client: their defaults stay out of the way,
# and the rate-limit tests set the rates they exercise.
_UNLIMITED_IN_TESTS = "100000/m"
# Failed API-key authentications per client IP; past it, 429 without checking the key.
TESSERA_API_AUTH_FAILURE_RATE = os.environ.get(
    "TESSERA_API_AUTH_FAILURE_RATE", _UNLIMITED_IN_TESTS if TESTING else "30/m"
)
# Checkout attempts per API key or portal member, and per client IP.
TESSERA_CHECKOUT_RATE = os.environ.get(
    "TESSERA_CHECKOUT_RATE", _UNLIMITED_IN_TESTS if TESTING else "60/m"
)
TESSERA_CHECKOUT_RATE_PER_CLIENT = os.environ.get(
    "TESSERA_CHECKOUT_RATE_PER_CLIENT", _UNLIMITED_IN_TESTS if TESTING else "120/m"
)
# Every limit counted per client IP asks tessera.core.clientip who the client is: behind N
# reverse proxies of ours, the address the outermost one saw (X-Forwarded-For), else the
# connecting address. Unset behind a proxy, all clients would share one allowance.
TESSERA_TRUSTED_PROXIES = int(os.environ.get("TESSERA_TRUSTED_PROXIES", "0"))
RATELIMIT_IP_META_KEY = "tessera.core.clientip.client_ip"

# One handler, on the root logger. Django's own defaults add a second console handler to
# the "django" logger (in DEBUG, so in the demo) whose records then reach the root's too:
# every django.* warning was printed twice. Configuring "django" without handlers removes it.
# TESSERA_LOG_FORMAT: "json" (one object per line, with the request id; production's
# default) or "plain" (for people: the demo, DEBUG and tests).
_LOG_FORMAT_DEFAULT = "plain" if (DEBUG or DEMO or TESTING) else "json"
TESSERA_LOG_FORMAT = os.environ.get("TESSERA_LOG_FORMAT", _LOG_FORMAT_DEFAULT).strip().lower()
if TESSERA_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(
        f"TESSERA_LOG_FORMAT must be 'json' or 'plain', not {TESSERA_LOG_FORMAT!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_outcome": {"()": "tessera.core.logs.RequestOutcomeFilter"},
        "context": {"()": "tessera.core.logs.ContextFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "tessera.core.logs.json_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": TESSERA_LOG_FORMAT,
            "filters": ["request_outcome", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("TESSERA_LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # The SDK logs every request at INFO; its errors reach us as exceptions anyway.
        "stripe": {"level": "WARNING"},
    },
}

# --- operations: health, logs, metrics ---
# /readyz fails when no worker has beaten its heartbeat (every 15 s) for this long.
TESSERA_WORKER_HEARTBEAT_SECONDS = int(os.environ.get("TESSERA_WORKER_HEARTBEAT_SECONDS", "120"))
# /metrics answers the bearer of this token; unset, only requests from this machine that no
# proxy relayed (anyone else gets 404). The figures are not secrets, but they tell an
# outsider what the business sells and when.
TESSERA_METRICS_TOKEN = os.environ.get("TESSERA_METRICS_TOKEN", "")
