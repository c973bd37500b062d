"""Fixtures of the alerts_web integration tests: real PostgreSQL, Redis, broker, model.

Django is configured before collection (see ``alerts_web.testing``); pytest-django
creates the ``test_<db>`` database on the PostgreSQL server and drops it at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts_web.testing import configure_django_for_tests

configure_django_for_tests()

import redis  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.test import Client  # noqa: E402

from alerts_web import scores, scoring  # noqa: E402
from alerts_web.api.models import ApiClient  # noqa: E402
from alerts_web.wards.models import Ward  # noqa: E402
from readmit_core.events import Factor, Intervention, ScoreEvent  # noqa: E402
from readmit_core.score_cache import ScoreCache  # noqa: E402
from readmit_core.settings import Settings, get_settings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_keys() -> Iterator[None]:
    """Delete this session's score keys (unique prefix) when the session ends."""
    yield
    s = get_settings()
    client = redis.Redis.from_url(s.redis_url)
    for key in client.scan_iter(match=f"{s.topic_prefix}*", count=1000):
        client.delete(key)


@pytest.fixture
def cache() -> ScoreCache:
    return scores.score_cache()


_counter = iter(range(1, 10**9))


def make_event(ward: str, **overrides: Any) -> ScoreEvent:
    n = next(_counter)
    values: dict[str, Any] = {
        "encounter_id": f"enc-{n}-{id(overrides) % 9973}",
        "patient_id": f"pat-{n}",
        "ward": ward,
        "input_key": f"in-{n}",
        "probability": 0.55 + (n % 40) / 100,
        "band": "high",
        "model_version": "lr-test-1",
        "factors": (
            Factor(feature="number_inpatient", label="2 inpatient stays", contribution=0.3),
            Factor(feature="age", label="Age 70-80", contribution=0.1),
        ),
        "interventions": (
            Intervention(
                code="med-rec",
                title="Medication reconciliation",
                rationale="Polypharmacy.",
                source="AHRQ RED",
            ),
            Intervention(
                code="follow-up-7d",
                title="Follow-up within 7 days",
                rationale="Early follow-up.",
                source="JAMA 2010",
            ),
        ),
    }
    values.update(overrides)
    return ScoreEvent.model_validate(values)


@pytest.fixture
def event_factory() -> Callable[..., ScoreEvent]:
    return make_event


@pytest.fixture
def wards(db: Any) -> tuple[Ward, Ward]:
    return (
        Ward.objects.create(code="ward-a", name="Ward A"),
        Ward.objects.create(code="ward-b", name="Ward B"),
    )


@pytest.fixture
def nurse_a(wards: tuple[Ward, Ward]) -> User:
    user = User.objects.create_user("nurse_a", password="pw-a-123456")
    wards[0].nurses.add(user)
    return user


@pytest.fixture
def nurse_b(wards: tuple[Ward, Ward]) -> User:
    user = User.objects.create_user("nurse_b", password="pw-b-123456")
    wards[1].nurses.add(user)
    return user


@pytest.fixture
def staff(db: Any) -> User:
    return User.objects.create_user(
        "planner", password="pw-s-123456", is_staff=True, is_superuser=True
    )


@pytest.fixture
def client_a(nurse_a: User) -> Client:
    c = Client()
    c.force_login(nurse_a)
    return c


@pytest.fixture
def api_key(db: Any) -> Callable[..., str]:
    def issue(*scopes: str, name: str | None = None) -> str:
        _, key = ApiClient.issue(name or f"client-{next(_counter)}", list(scopes))
        return key

    return issue


@pytest.fixture
def real_model(registry_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The web app scores with the session's real trained champion."""
    base = get_settings()
    settings = Settings(**{**base.model_dump(), "model_dir": registry_root})
    monkeypatch.setattr(scoring, "get_settings", lambda: settings)
    scoring.reset_model()
    yield registry_root
    scoring.reset_model()
