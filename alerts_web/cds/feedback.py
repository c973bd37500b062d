"""The CDS Hooks 2.0 feedback request: ``{"feedback": [Feedback, ...]}``, validated.

Each Feedback names a ``card`` (its uuid), an ``outcome`` (accepted | overridden) and an
``outcomeTimestamp``; an accepted card lists the ``acceptedSuggestions`` (``{"id":
<suggestion uuid>}``) and an overridden one may give an ``overrideReason`` (``reason``
Coding and/or ``userComment``). Pure (no Django) so the rules are unit-tested; whether
the uuids were issued is the view's check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from alerts_web.cds.cards import CdsRequestError

MAX_ENTRIES: Final = 100
COMMENT_MAX: Final = 4000


@dataclass(frozen=True)
class FeedbackEntry:
    card: str
    outcome: str
    outcome_at: datetime
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: dict[str, Any] | None = None
    user_comment: str = ""


def _uuid(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CdsRequestError(where, "required (a uuid)")
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise CdsRequestError(where, "must be a uuid") from exc


def _instant(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise CdsRequestError(where, "required (an instant)")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CdsRequestError(where, "must be an ISO 8601 instant") from exc
    if parsed.tzinfo is None:
        raise CdsRequestError(where, "must carry a time zone")
    return parsed


def _accepted(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise CdsRequestError(where, "required when the outcome is accepted")
    ids = []
    for j, item in enumerate(raw):
        if not isinstance(item, dict):
            raise CdsRequestError(f"{where}[{j}]", "expected an object with id")
        ids.append(_uuid(item.get("id"), f"{where}[{j}].id"))
    return tuple(dict.fromkeys(ids))


def _override(raw: Any, where: str) -> tuple[dict[str, Any] | None, str]:
    if raw is None:
        return None, ""
    if not isinstance(raw, dict):
        raise CdsRequestError(where, "expected an object")
    reason = raw.get("reason")
    if reason is not None and (
        not isinstance(reason, dict) or not isinstance(reason.get("code"), str)
    ):
        raise CdsRequestError(f"{where}.reason", "must be a Coding with a code")
    comment = raw.get("userComment", "")
    if not isinstance(comment, str) or len(comment) > COMMENT_MAX:
        raise CdsRequestError(f"{where}.userComment", f"a text of at most {COMMENT_MAX} chars")
    if reason is None and not comment:
        raise CdsRequestError(where, "give reason or userComment")
    return reason, comment.replace("\x00", "")


def _entry(raw: Any, where: str) -> FeedbackEntry:
    if not isinstance(raw, dict):
        raise CdsRequestError(where, "expected an object")
    card = _uuid(raw.get("card"), f"{where}.card")
    outcome = raw.get("outcome")
    at = _instant(raw.get("outcomeTimestamp"), f"{where}.outcomeTimestamp")
    if outcome == "accepted":
        if raw.get("overrideReason") is not None:
            raise CdsRequestError(f"{where}.overrideReason", "only for an overridden card")
        accepted = _accepted(raw.get("acceptedSuggestions"), f"{where}.acceptedSuggestions")
        return FeedbackEntry(card, outcome, at, accepted_suggestions=accepted)
    if outcome == "overridden":
        if raw.get("acceptedSuggestions"):
            raise CdsRequestError(f"{where}.acceptedSuggestions", "only for an accepted card")
        reason, comment = _override(raw.get("overrideReason"), f"{where}.overrideReason")
        return FeedbackEntry(card, outcome, at, override_reason=reason, user_comment=comment)
    raise CdsRequestError(f"{where}.outcome", "must be accepted or overridden")


def parse_feedback(body: Any) -> list[FeedbackEntry]:
    if not isinstance(body, dict):
        raise CdsRequestError("body", "expected a JSON object")
    raw = body.get("feedback")
    if not isinstance(raw, list) or not raw:
        raise CdsRequestError("feedback", "required: a non-empty array of Feedback")
    if len(raw) > MAX_ENTRIES:
        raise CdsRequestError("feedback", f"at most {MAX_ENTRIES} entries a request")
    return [_entry(item, f"feedback[{i}]") for i, item in enumerate(raw)]
