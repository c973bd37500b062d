"""The embedded stack's scorer metrics ports: clear of its other services, and the ops
page pointed at them (an outsider found scorer-1 on the feed's 9465 and the ops page
scraping 9464 while the scorer served elsewhere)."""

from __future__ import annotations

from pathlib import Path

from readmit.embedded.stack import Stack
from readmit_core.settings import Settings


def _stack(tmp_path: Path, scorers: int, **fields: object) -> Stack:
    return Stack(Settings(state_dir=tmp_path, **fields), scorers=scorers)  # type: ignore[arg-type]


def test_scorers_count_up_past_the_feed_and_explainer_ports(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path, 3, scorer_metrics_port=9464, feed_metrics_port=9465, explainer_metrics_port=9467
    )
    assert [stack.scorer_metrics_port(i) for i in range(3)] == [9464, 9466, 9468]
    stack._point_ops_at_scorers()
    assert stack.settings.scorer_metrics_url_list == [
        "http://127.0.0.1:9464/metrics",
        "http://127.0.0.1:9466/metrics",
        "http://127.0.0.1:9468/metrics",
    ]


def test_the_operators_urls_are_kept(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2, scorer_metrics_urls="http://scorer-a:9464/metrics")
    stack._point_ops_at_scorers()
    assert stack.settings.scorer_metrics_url_list == ["http://scorer-a:9464/metrics"]


def test_metrics_off_stays_off(tmp_path: Path) -> None:
    stack = _stack(tmp_path, 2, scorer_metrics_port=0)
    assert stack.scorer_metrics_port(1) == 0
    stack._point_ops_at_scorers()
    assert "scorer_metrics_urls" not in stack.settings.model_fields_set
