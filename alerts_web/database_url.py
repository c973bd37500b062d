"""Turn READMIT_DATABASE_URL into Django's DATABASES entry.

One URL is what operators know from every other tool; Django wants a dict. Empty
means the embedded default: a SQLite file in the state directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class UnsupportedDatabaseURL(ValueError):
    """The URL names a database engine this app is not tested with."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"unsupported database scheme {scheme!r}; use postgresql:// or empty")
        self.scheme = scheme


def database_config(url: str, state_dir: Path) -> dict[str, Any]:
    """Django DATABASES['default'] for ``url`` (postgresql://… or empty for SQLite)."""
    if not url.strip():
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(state_dir / "alerts_web.sqlite3"),
        }
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg2"):
        raise UnsupportedDatabaseURL(parts.scheme)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
