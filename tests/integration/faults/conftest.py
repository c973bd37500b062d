"""The fault suite reuses the streaming fixtures (per-test topics, group, cache)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_STREAMING = Path(__file__).resolve().parent.parent / "streaming"
sys.path.insert(0, str(_STREAMING))  # stream_support
_spec = importlib.util.spec_from_file_location("streaming_fixtures", _STREAMING / "conftest.py")
assert _spec is not None
assert _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

stream_settings = _fixtures.stream_settings
cache = _fixtures.cache
scorer_processes = _fixtures.scorer_processes

# our own PostgreSQL cluster and Redis, for every fault module that kills them
from test_state_faults import own_postgres, own_redis  # noqa: E402

__all__ = ["cache", "own_postgres", "own_redis", "scorer_processes", "stream_settings"]
