"""Procedures -> num_procedures."""

from __future__ import annotations

from typing import Any

_NOT_DONE = {"entered-in-error", "not-done", "preparation"}


def counts(procedure: dict[str, Any]) -> bool:
    """A Procedure of the stay counts unless it did not happen."""
    return procedure.get("status") not in _NOT_DONE
