"""The CDS Hooks 2.0 feedback body: each rule names the entry and field it refuses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from alerts_web.cds.cards import CdsRequestError
from alerts_web.cds.feedback import MAX_ENTRIES, parse_feedback

CARD = str(uuid.uuid4())
SUGGESTION = str(uuid.uuid4())
AT = "2026-12-02T01:02:03Z"


def _accepted(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "card": CARD,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": SUGGESTION}],
        "outcomeTimestamp": AT,
    }
    entry.update(overrides)
    return entry


def test_an_accepted_and_an_overridden_card_parse() -> None:
    overridden = {
        "card": CARD,
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"code": "already-done", "system": "urn:x"},
            "userComment": "done at admission",
        },
        "outcomeTimestamp": "2026-12-02T01:02:03+01:00",
    }
    first, second = parse_feedback({"feedback": [_accepted(), overridden]})
    assert (first.card, first.outcome, first.accepted_suggestions) == (
        CARD,
        "accepted",
        (SUGGESTION,),
    )
    assert first.outcome_at.utcoffset() is not None
    assert second.override_reason == {"code": "already-done", "system": "urn:x"}
    assert second.user_comment == "done at admission"
    assert second.accepted_suggestions == ()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [_accepted()] * (MAX_ENTRIES + 1)}, "feedback"),
        ({"feedback": ["x"]}, "feedback[0]"),
        ({"feedback": [_accepted(card="nope")]}, "feedback[0].card"),
        ({"feedback": [_accepted(), _accepted(card=None)]}, "feedback[1].card"),
        ({"feedback": [_accepted(outcome="ignored")]}, "feedback[0].outcome"),
        ({"feedback": [_accepted(outcomeTimestamp=None)]}, "feedback[0].outcomeTimestamp"),
        (
            {"feedback": [_accepted(outcomeTimestamp="2026-12-02T01:02:03")]},
            "feedback[0].outcomeTimestamp",
        ),
        ({"feedback": [_accepted(acceptedSuggestions=[])]}, "feedback[0].acceptedSuggestions"),
        (
            {"feedback": [_accepted(acceptedSuggestions=[{"id": "x"}])]},
            "feedback[0].acceptedSuggestions[0].id",
        ),
        (
            {"feedback": [_accepted(overrideReason={"userComment": "no"})]},
            "feedback[0].overrideReason",
        ),
        (
            {"feedback": [_accepted(outcome="overridden")]},
            "feedback[0].acceptedSuggestions",
        ),
        (
            {
                "feedback": [
                    _accepted(outcome="overridden", acceptedSuggestions=None, overrideReason={})
                ]
            },
            "feedback[0].overrideReason",
        ),
        (
            {
                "feedback": [
                    _accepted(
                        outcome="overridden",
                        acceptedSuggestions=None,
                        overrideReason={"reason": "text"},
                    )
                ]
            },
            "feedback[0].overrideReason.reason",
        ),
    ],
)
def test_bad_feedback_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(CdsRequestError) as err:
        parse_feedback(body)
    assert err.value.field == field


def test_an_override_without_a_reason_is_allowed() -> None:
    (entry,) = parse_feedback(
        {"feedback": [{"card": CARD, "outcome": "overridden", "outcomeTimestamp": AT}]}
    )
    assert (entry.override_reason, entry.user_comment) == (None, "")
