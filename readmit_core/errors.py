"""The project's one error root, and the errors shared by every component.

Component-specific errors live with their component but all derive from
:class:`ReadmitError`, so a caller can catch "anything this system refused or could not
do" in one clause and read *what* from structured fields, never from the message text:

- ``status``: the HTTP status an API answers with when this error reaches it;
- ``issue_code``: the FHIR R4 ``IssueType`` code of the OperationOutcome it becomes;
- ``entry_index``: the Bundle entry it is about (None: the request as a whole);
- ``dlq_reason``: the dead-letter reason when a stream consumer meets it (None: not a
  property of the message, e.g. a dependency outage, so the message is retried instead).

Subclasses override the class defaults; instances may set ``entry_index``.
"""

from __future__ import annotations


class ReadmitError(Exception):
    """Base of the project's own errors: each carries what went wrong, in words and fields."""

    status: int = 500
    issue_code: str = "exception"
    dlq_reason: str | None = None
    entry_index: int | None = None


class ServiceUnavailable(ReadmitError):
    """A dependency (broker, Redis, database) did not answer; names it and where."""

    status = 503
    issue_code = "transient"

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.detail = detail
