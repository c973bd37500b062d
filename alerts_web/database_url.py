"""Turn READMIT_DATABASE_URL into Django's DATABASES entry.

One URL is what operators know from every other tool; Django wants a dict, and
dj-database-url is the maintained translation. Empty means the embedded default: a
SQLite file in the state directory. Only PostgreSQL is accepted otherwise: it is the
one server engine the app is tested with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url

from readmit_core.errors import ReadmitError

POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg2")


class UnsupportedDatabaseURL(ReadmitError, ValueError):
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
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise UnsupportedDatabaseURL(scheme)
    config = dj_database_url.parse(
        url.replace("postgresql+psycopg2://", "postgresql://", 1),
        conn_max_age=60,
        conn_health_checks=True,
    )
    config["NAME"] = config.get("NAME") or "postgres"
    config["PORT"] = str(config.get("PORT") or "")
    return dict(config)
