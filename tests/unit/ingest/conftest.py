"""Ingest unit tests run the app on a fresh SQLite state database in each test's tmp dir.

The web tests' conftest points READMIT_DATABASE_URL at the shared test PostgreSQL for
the whole session (Django reads it once); an ingest app built from Settings() in the
same session would then share one state database (and one scope) across tests, and a
test's versions or identities would leak into the next.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_state_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("READMIT_DATABASE_URL", raising=False)
