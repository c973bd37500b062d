"""Test-process configuration of the web app (used by the tests' conftest files only).

Django reads its settings once, at setup, from ``get_settings()``; the tests must
therefore put the database URL, Redis URL and a per-session key prefix into the
environment *before* that. Kept here, in one place, so the unit and integration
conftests cannot drift apart.
"""

from __future__ import annotations

import os
import uuid

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def configure_django_for_tests() -> None:
    """Point settings at the test PostgreSQL/Redis with a unique prefix, then set up Django."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alerts_web.settings")
    os.environ.setdefault(
        "READMIT_DATABASE_URL",
        os.environ.get("READMIT_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL),
    )
    if os.environ.get("READMIT_TEST_REDIS_URL"):
        os.environ.setdefault("READMIT_REDIS_URL", os.environ["READMIT_TEST_REDIS_URL"])
    os.environ.setdefault("READMIT_TOPIC_PREFIX", f"t{uuid.uuid4().hex[:8]}.web.")
    from readmit_core.settings import get_settings

    get_settings.cache_clear()
    import django

    django.setup()
