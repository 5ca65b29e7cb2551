"""Vigil settings. Everything that differs between machines comes from the environment
(see .env.example); with nothing set, Vigil runs embedded on SQLite and a filesystem broker."""

import os
from pathlib import Path

from crm.env import (
    env_bool,
    env_cache,
    env_charset,
    env_database,
    env_fernet_keys,
    env_int,
    env_list,
    env_secret_key,
    env_str,
    env_time_zone,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VIGIL_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret_key("SECRET_KEY", VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_htmx",
    "crm",
    "mailsync",
    "finance",
    "notifications",
    "parc",
    "nurture",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crm.middleware.UserTimeZone",
    "notifications.middleware.BlockingGate",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "crm.urls"
# Selects written in Python: the per-option template of Django's is most of a list page's time.
FORM_RENDERER = "crm.renderers.FormRenderer"
WSGI_APPLICATION = "crm.wsgi.application"
AUTH_USER_MODEL = "crm.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        # The lists' rows and the dashboard's cards (<app>/jinja2/): see crm/templating.py.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "APP_DIRS": True,
        "OPTIONS": {
            "environment": "crm.templating.environment",
            "context_processors": ["crm.templating.csrf"],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'vigil.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE
    # transactions take the write lock up front instead of failing half-way with "locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Pages run many small queries; PostgreSQL's JIT compiler costs more than it saves on them.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) are a PostgreSQL feature; SQLite builds the plain index instead.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Time: aware datetimes everywhere; schedules run in the company time zone -------------------
USE_TZ = True
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
LANGUAGE_CODE = "en-us"
USE_I18N = True
# One date and time format on every page (crm/formats/en/formats.py).
FORMAT_MODULE_PATH = ["crm.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Files served at the site root, for every page the admin's included: /favicon.ico.
WHITENOISE_ROOT = BASE_DIR / "crm" / "public"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Email: every message leaves through the outbox (mailsync), sent with this backend ----------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "mailsync.backends.EmlDirectoryBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Vigil <vigil@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where people reach Vigil; links in emails start with it.
VIGIL_SITE_URL = env_str("VIGIL_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Our own Message-IDs end in this domain; mailsync recognises CRM-sent mail by it.
VIGIL_MAIL_DOMAIN = env_str("VIGIL_MAIL_DOMAIN", "vigil.localhost")
# django-anymail: ANYMAIL_<SETTING>=value in the environment, e.g. ANYMAIL_MAILGUN_API_KEY.
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_")
}
VIGIL_OUTBOX_MAX_ATTEMPTS = env_int("VIGIL_OUTBOX_MAX_ATTEMPTS", 8, minimum=1)
VIGIL_OUTBOX_BACKOFF_SECONDS = env_int("VIGIL_OUTBOX_BACKOFF_SECONDS", 60, minimum=1)

# --- Mailbox sync (mailsync): users' IMAP mailboxes -------------------------------------------
# Fernet keys for the refresh tokens and passwords of connected mailboxes, newest first
# (comma-separated; MultiFernet decrypts with any, encrypts with the first). Kept apart from
# SECRET_KEY; the embedded default makes one in a private file under var/.
VIGIL_MAILBOX_KEYS = env_fernet_keys("VIGIL_MAILBOX_KEYS", VAR_DIR / "mailbox_key")
VIGIL_MAILSYNC_INTERVAL_MINUTES = env_int("VIGIL_MAILSYNC_INTERVAL_MINUTES", 5, minimum=1)
# A slow or hung IMAP server holds one worker for at most this long per network call.
VIGIL_MAILSYNC_SOCKET_TIMEOUT = env_int("VIGIL_MAILSYNC_SOCKET_TIMEOUT", 30, minimum=1)
VIGIL_MAILSYNC_BATCH = env_int("VIGIL_MAILSYNC_BATCH", 500, minimum=1)
# Processes that parse a sync's mail when it has more than 10,000 to read (a first sync): one
# per usable core by default; 0 or 1 parses on the thread that downloads. Per sync, not per host.
VIGIL_MAILSYNC_PARSERS = env_int(
    "VIGIL_MAILSYNC_PARSERS",
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
)
# Whether users may point a mailbox at a server on this machine or a private network. Off: a
# user's IMAP host must not become a way into the servers next to Vigil.
VIGIL_MAILSYNC_PRIVATE_HOSTS = env_bool("VIGIL_MAILSYNC_PRIVATE_HOSTS", False)
# 8-bit mail that declares no charset (or US-ASCII, or is not valid UTF-8) is read in this one,
# as Thunderbird does, with a parse warning. The raw message of an email whose parse noted a
# problem is kept (compressed) up to this size, for `manage.py reparse_emails`; 0 keeps none
# (an email that could not be parsed at all is always kept: it is all there is of it).
VIGIL_MAILSYNC_FALLBACK_CHARSET = env_charset("VIGIL_MAILSYNC_FALLBACK_CHARSET", "windows-1252")
VIGIL_MAILSYNC_RAW_KEEP_BYTES = env_int("VIGIL_MAILSYNC_RAW_KEEP_BYTES", 5 * 1024 * 1024)
# OAuth 2.0 providers a user can connect with "Connect" (authorization code + PKCE, XOAUTH2).
# A provider without a client id is offered only as a generic IMAP server.
VIGIL_MAIL_PROVIDERS = {
    "google": {
        "label": "Google",
        "client_id": env_str("GOOGLE_OAUTH_CLIENT_ID"),
        "client_secret": env_str("GOOGLE_OAUTH_CLIENT_SECRET"),
        "authorize_url": env_str(
            "GOOGLE_OAUTH_AUTHORIZE_URL", "https://accounts.google.com/o/oauth2/v2/auth"
        ),
        "token_url": env_str("GOOGLE_OAUTH_TOKEN_URL", "https://oauth2.googleapis.com/token"),
        "scope": env_str("GOOGLE_OAUTH_SCOPE", "https://mail.google.com/"),
        "extra_authorize_params": {"access_type": "offline", "prompt": "consent"},
        "imap_host": env_str("GOOGLE_IMAP_HOST", "imap.gmail.com"),
        "imap_port": env_int("GOOGLE_IMAP_PORT", 993, minimum=1),
        "imap_security": env_str("GOOGLE_IMAP_SECURITY", "ssl"),
    },
    "microsoft": {
        "label": "Microsoft 365",
        "client_id": env_str("MICROSOFT_OAUTH_CLIENT_ID"),
        "client_secret": env_str("MICROSOFT_OAUTH_CLIENT_SECRET"),
        "authorize_url": env_str(
            "MICROSOFT_OAUTH_AUTHORIZE_URL",
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        ),
        "token_url": env_str(
            "MICROSOFT_OAUTH_TOKEN_URL",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        ),
        "scope": env_str(
            "MICROSOFT_OAUTH_SCOPE",
            "offline_access https://outlook.office.com/IMAP.AccessAsUser.All",
        ),
        "extra_authorize_params": {},
        "imap_host": env_str("MICROSOFT_IMAP_HOST", "outlook.office365.com"),
        "imap_port": env_int("MICROSOFT_IMAP_PORT", 993, minimum=1),
        "imap_security": env_str("MICROSOFT_IMAP_SECURITY", "ssl"),
    },
}

# --- Nurture P2 -----------------------------------------------------------------------------------
# Days a lead's automatic reply (out of office) pauses its sequence: the next step goes out no
# earlier than this many days after the automatic reply.
VIGIL_NURTURE_AUTO_REPLY_PAUSE_DAYS = env_int("VIGIL_NURTURE_AUTO_REPLY_PAUSE_DAYS", 7, minimum=1)

# --- Jobs and Celery ------------------------------------------------------------------------------
VIGIL_JOB_MAX_FAILURES = env_int("VIGIL_JOB_MAX_FAILURES", 3, minimum=1)
VIGIL_JOB_LEASE_SECONDS = env_int("VIGIL_JOB_LEASE_SECONDS", 120, minimum=10)
# How many times a scheduled slot whose runner died (killed mid-run) is started again before it
# is left to the next slot.
VIGIL_JOB_SLOT_ATTEMPTS = env_int("VIGIL_JOB_SLOT_ATTEMPTS", 3, minimum=1)
VIGIL_REMINDER_EXPIRY_DAYS = env_int("VIGIL_REMINDER_EXPIRY_DAYS", 14, minimum=1)
# The company currency (ISO 4217 code) amounts are shown in on the dashboard.
VIGIL_CURRENCY = env_str("VIGIL_CURRENCY", "EUR")

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The filesystem transport ignores the host, but kombu warns at every connection without one.
    CELERY_BROKER_URL = "filesystem://localhost/"
    _queue, _processed, _control = (
        VAR_DIR / "broker" / d for d in ("queue", "processed", "control")
    )
    for _folder in (_queue, _processed, _control):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "processed_folder": str(_processed),
        "control_folder": str(_control),
        "store_processed": False,
    }
CELERY_TIMEZONE = TIME_ZONE

# The cache: Redis when the broker is Redis, so every process shares it; else each process its
# own memory. VIGIL_CACHE_URL sets it apart ("local" for process memory). Nothing uses it today.
_REDIS_BROKER = CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
CACHES = {"default": env_cache("VIGIL_CACHE_URL", _REDIS_BROKER)}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A worker killed mid-job gives the message back; jobs are idempotent, so a re-run is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

ADMINS = [("Vigil administrators", a) for a in env_list("ADMIN_EMAILS", [])]


def _without_client_error_traceback(record) -> bool:
    """A refused request (403, 404: PermissionDenied, Http404) is routine: log its one line,
    not the traceback of the exception that answered it. Server errors keep theirs."""
    if getattr(record, "status_code", 500) < 500:
        record.exc_info = None
        record.exc_text = None
    return True


def _without_secret_keys(record) -> bool:
    """A request line names the query: secret parameters (a calendar feed's key) are left
    out, by the bug detector's rules."""
    from monitoring.scrubbing import safe_query

    record.args = tuple(
        safe_query(arg) if isinstance(arg, str) else arg for arg in (record.args or ())
    )
    return True


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        # Django's own, for `runserver`'s request lines (make run).
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "filters": {
        "client_errors_in_one_line": {
            "()": "django.utils.log.CallbackFilter",
            "callback": _without_client_error_traceback,
        },
        "without_secret_keys": {
            "()": "django.utils.log.CallbackFilter",
            "callback": _without_secret_keys,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["client_errors_in_one_line"],
        },
        # The bug detector: every ERROR record (and, through sys.excepthook, every unhandled
        # exception) stored as an error event grouped by fingerprint, secrets scrubbed; stderr
        # when the database cannot take it. Admin → Error events; the daily bug_report.
        "error_events": {"class": "monitoring.capture.ErrorEventHandler", "level": "ERROR"},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["without_secret_keys"],
        },
    },
    "root": {"handlers": ["console", "error_events"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}


# --- Sentry: off unless SENTRY_DSN is set ------------------------------------------------------
def _without_query_string(event, hint):
    """Secret query parameters (a calendar feed's key) left out, by the bug detector's rules."""
    from monitoring.scrubbing import safe_query

    request = event.get("request")
    if isinstance(request, dict):
        if isinstance(request.get("query_string"), str):
            request["query_string"] = safe_query("?" + request["query_string"])[1:]
        if isinstance(request.get("url"), str):
            request["url"] = safe_query(request["url"])
    return event


SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk

    # Django, Celery and logging integrations switch on by themselves. No personal data and no
    # local variables leave the building: those are where passwords and tokens live.
    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        send_default_pii=False,
        include_local_variables=False,
        traces_sample_rate=0.0,
        # A query string can hold a secret (a calendar feed's key): its value is not sent.
        before_send=_without_query_string,
    )
