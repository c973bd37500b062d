"""Errors shared by every component (component-specific ones live with the component)."""

from __future__ import annotations


class ReadmitError(Exception):
    """Base of the project's own errors: each carries what went wrong, in words."""


class ServiceUnavailable(ReadmitError):
    """A dependency (broker, Redis, database) did not answer; names it and where."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.detail = detail
