"""Django settings, every value taken from ``readmit_core.settings.get_settings()``.

Operators learn one list of READMIT_* variables for the whole system; nothing here
reads the environment directly.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from csp.constants import NONE, SELF

from alerts_web.database_url import database_config
from readmit_core.log_format import QUIET_LOGGERS
from readmit_core.settings import get_settings

_S = get_settings()
BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = _S.django_secret_key.get_secret_value()
DEBUG = _S.debug
ALLOWED_HOSTS = _S.allowed_hosts

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "csp",
    "alerts_web.wards",
    "alerts_web.alerts",
    "alerts_web.api",
    "alerts_web.fhir_api",
    "alerts_web.cds",
    "alerts_web.ops",
    "alerts_web.whatif",
    "alerts_web.access_audit",
    "alerts_web.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who read which patient (database rows, never logs) and Cache-Control: no-store.
    "alerts_web.access_audit.middleware.AccessAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication: answers a locked-out login with the lockout page.
    "axes.middleware.AxesMiddleware",
    "alerts_web.outage.OutageMiddleware",  # innermost: Redis/database down -> 503, not 500
]

ROOT_URLCONF = "alerts_web.urls"
ASGI_APPLICATION = "alerts_web.asgi.application"

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
]

DATABASES = {"default": database_config(_S.database_url, _S.state_dir)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    _S.state_dir.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # socket_timeout=None: the layer's receive is a 5 s server-side blocking pop, which a
        # client read timeout of 5 s (redis-py 8's default) aborts, dropping every socket
        # (django/channels_redis#422). redis-py is pinned below 8 too; this keeps an
        # upgrade safe. Connection attempts still time out.
        "CONFIG": {
            "hosts": [
                {"address": _S.redis_url, "socket_timeout": None, "socket_connect_timeout": 5}
            ],
            "prefix": f"{_S.topic_prefix}channels:",
        },
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _S.redis_url,
        "KEY_PREFIX": f"{_S.topic_prefix}web",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login throttling (django-axes): after READMIT_LOGIN_FAILURE_LIMIT failures one user name
# from one address is locked for READMIT_LOGIN_LOCKOUT_MINUTES (0: until an admin unlocks
# it in the admin's *Access attempts*, or `python -m alerts_web axes_reset_username NAME`).
# Axes is the first backend so a locked pair is refused before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _S.login_failure_limit
AXES_COOLOFF_TIME = (
    timedelta(minutes=_S.login_lockout_minutes) if _S.login_lockout_minutes else None
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "alerts_web.login_lockout.client_address"
AXES_LOCKOUT_CALLABLE = "alerts_web.login_lockout.lockout_response"
# Attempts store GET/POST data with the password masked (axes always masks "password");
# the log line names neither user nor address (masked), like every other log line here.
AXES_PASSWORD_FORM_FIELD = "password"
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "wards:index"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# A shift, then log in again; closing the browser ends the session (shared ward PCs).
SESSION_COOKIE_AGE = _S.session_max_age_seconds
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Behind the TLS-terminating reverse proxy (README "Security"): it must set
# X-Forwarded-Proto and strip any the client sent. Outside the embedded demo (plain HTTP
# on 127.0.0.1) cookies travel only over HTTPS and browsers are told to stay on HTTPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not _S.embedded
CSRF_COOKIE_SECURE = not _S.embedded
SECURE_HSTS_SECONDS = 0 if _S.embedded else 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
# Content-Security-Policy on every answer (pages, downloads, API): only this origin's
# script files run, no inline script or handler (tests/unit/alerts_web greps every
# template), no plugins, no framing, no <base> redirection. Inline style is refused too:
# the templates use classes; scripts that position elements use the CSSOM, which CSP
# allows. Swagger UI gets the same policy (its init script is a static file).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = _S.state_dir / "static"

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "alerts_web.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["alerts_web.api.throttling.PerClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"client": _S.api_throttle_rate},
    "DEFAULT_PAGINATION_CLASS": "alerts_web.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "alerts_web.api.errors.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "readmit scores API",
    "DESCRIPTION": "30-day readmission risk scores for integrators: encounter scores, patient "
    "score history, ward alerts, on-demand prediction. Authenticate with "
    "`Authorization: Api-Key <key>`; each key carries scopes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": f"{STATIC_URL}vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": f"{STATIC_URL}alerts_web/favicon.svg",
    # The 23 medication columns share one vocabulary: one enum, not 23 names for it.
    "ENUM_NAME_OVERRIDES": {"MedicationDoseEnum": "alerts_web.feature_fields.MEDICATION_CHOICES"},
}

# Patient identifiers appear in URLs (/api/v1/encounters/<id>/score); the filter logs
# the URL pattern instead of the path so they never reach a log file.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_paths": {"()": "alerts_web.log_redaction.RedactRequestPath"}},
    # the same one-object-per-line JSON (identifying fields dropped) as ingest and scorer
    "formatters": {"json": {"()": "readmit_core.log_format.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_paths"],
            "formatter": "json",
        }
    },
    "root": {"handlers": ["console"], "level": _S.log_level},
    "loggers": {
        # Filters on the loggers (not only the handler) so every handler gets redacted records.
        name: {
            "handlers": ["console"],
            "level": "WARNING",
            "propagate": False,
            "filters": ["redact_paths"],
        }
        for name in ("django.request", "django.server", "django.channels.server")
    }
    # request URLs (the CDS fhirServer fetch names the encounter) and chatter: WARNING only
    | {name: {"level": "WARNING"} for name in QUIET_LOGGERS},
}
