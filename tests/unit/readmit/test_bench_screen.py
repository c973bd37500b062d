"""The screen probe's bookkeeping: which push counts as the alert, which as its factors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from readmit.benchmarks.screen import ScreenProbe


def _push(enc: str, *, pending: bool, computed: float, stored: float, sent: float) -> dict:
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat()

    return {
        "type": "alert",
        "server_time": iso(sent),
        "alert": {
            "encounter_id": enc,
            "factors_pending": pending,
            "computed_at": iso(computed),
            "updated_at": iso(stored),
        },
    }


def test_first_push_is_the_alert_and_first_complete_push_its_factors() -> None:
    probe = ScreenProbe("http://web", {})
    probe._note(_push("e1", pending=True, computed=10.02, stored=10.05, sent=10.06), 10.07)
    probe._note(_push("e1", pending=False, computed=10.02, stored=10.5, sent=10.51), 10.52)
    probe._note(_push("e1", pending=False, computed=10.02, stored=11.0, sent=11.0), 11.01)
    probe._note({"type": "pong", "server_time": "x"}, 12.0)  # not an alert: ignored

    shown, explained = probe.latencies_ms(["e1", "e2"], [10.0, 10.0])
    assert shown == pytest.approx([70.0])
    assert explained == pytest.approx([520.0])  # the first push without factors_pending
    hops = probe.hops_ms(["e1"], [10.0])
    assert hops["scored"] == pytest.approx([20.0], abs=1e-3)
    assert hops["stored"] == pytest.approx([30.0], abs=1e-3)
    assert hops["pushed"] == pytest.approx([10.0], abs=1e-3)
    assert hops["received"] == pytest.approx([10.0], abs=1e-3)


def test_an_alert_that_arrives_explained_counts_for_both() -> None:
    probe = ScreenProbe("http://web", {})
    probe._note(_push("e1", pending=False, computed=1.0, stored=1.1, sent=1.2), 1.3)
    assert probe.latencies_ms(["e1"], [0.5]) == (
        pytest.approx([800.0]),
        pytest.approx([800.0]),
    )


def test_a_push_without_its_times_counts_on_screen_but_not_in_the_hops() -> None:
    probe = ScreenProbe("http://web", {})
    probe._note({"alert": {"encounter_id": "e1", "factors_pending": False}}, 2.0)
    assert probe.latencies_ms(["e1"], [1.0])[0] == pytest.approx([1000.0])
    assert probe.hops_ms(["e1"], [1.0]) == {
        "scored": [],
        "stored": [],
        "pushed": [],
        "received": [],
    }
