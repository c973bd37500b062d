"""Throughput of the mapper next to plain JSON parsing of the same bytes, in one run.

``readmit bench mapper`` (the lead's) calls :func:`measure`; the numbers are only
comparable within a run, so the baseline (``orjson.loads``) is always measured
alongside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from fhir_mappings.mapper import map_document, map_trusted_document
from fhir_mappings.validation import KNOWN_VALID


def _count_resources(bundle: bytes) -> int:
    data = orjson.loads(bundle)
    if data.get("resourceType") == "Bundle":
        return sum(1 for e in data.get("entry") or () if e.get("resource"))
    return 1


def _timed(fn: Callable[[bytes], Any], bundles: list[bytes]) -> float:
    started = time.perf_counter()
    for body in bundles:
        fn(body)
    return time.perf_counter() - started


def _timed_cold(fn: Callable[[bytes], Any], bundles: list[bytes]) -> float:
    """Like ``_timed``, with the validation memo emptied before each call: mapping the same
    record again would otherwise find every element known (an EHR's resend), which says
    nothing about a new record."""
    seconds = 0.0
    for body in bundles:
        KNOWN_VALID.clear()
        started = time.perf_counter()
        fn(body)
        seconds += time.perf_counter() - started
    return seconds


def _rates(seconds: float, bundles: int, resources: int) -> dict[str, float]:
    return {
        "seconds": round(seconds, 4),
        "bundles_per_s": round(bundles / seconds, 1) if seconds else float("inf"),
        "us_per_resource": round(seconds / resources * 1e6, 2) if resources else 0.0,
        "us_per_bundle": round(seconds / bundles * 1e6, 1) if bundles else 0.0,
    }


def measure(bundles: list[bytes]) -> dict[str, Any]:
    """Bundles/s and µs per resource of ``map_document`` (validating), of the mapping
    rules alone, and of ``orjson.loads`` on the same bytes, measured in this run."""
    if not bundles:
        raise ValueError("measure() needs at least one bundle")
    resources = sum(_count_resources(b) for b in bundles)
    map_document(bundles[0])  # warm up: model classes, imports
    return {
        "bundles": len(bundles),
        "resources": resources,
        "orjson_loads": _rates(_timed(orjson.loads, bundles), len(bundles), resources),
        "map_document": _rates(_timed(map_document, bundles), len(bundles), resources),
        "map_rules_only": _rates(_timed(map_trusted_document, bundles), len(bundles), resources),
    }


def measure_record(body: bytes, repeats: int) -> dict[str, Any]:
    """Resources/s of one real patient record (a ~400-entry Synthea Bundle) mapped
    ``repeats`` times (each with an empty validation memo), next to ``orjson.loads`` of
    the same bytes in the same run."""
    if repeats < 1:
        raise ValueError("measure_record() needs repeats >= 1")
    bodies = [body] * repeats
    resources = _count_resources(body) * repeats
    map_document(body)  # warm up

    def per_second(seconds: float) -> float:
        return round(resources / seconds, 1) if seconds else float("inf")

    loads = _timed(orjson.loads, bodies)
    full = _timed_cold(map_document, bodies)
    rules = _timed(map_trusted_document, bodies)
    return {
        "entries": _count_resources(body),
        "bytes": len(body),
        "repeats": repeats,
        "orjson_loads_resources_per_s": per_second(loads),
        "map_document_resources_per_s": per_second(full),
        "map_rules_only_resources_per_s": per_second(rules),
        "map_document_ms_per_record": round(full / repeats * 1e3, 2),
        "map_rules_only_ms_per_record": round(rules / repeats * 1e3, 2),
    }
