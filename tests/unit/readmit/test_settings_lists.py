"""List-valued settings are parsed in one place, the settings class."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from readmit_core.settings import Settings, comma_list

item = st.from_regex(r"[A-Za-z0-9:/._\-]{1,12}", fullmatch=True)


@given(st.lists(item, max_size=6), st.sampled_from(["", " ", "  "]))
def test_comma_list_round_trips_items_in_order(items: list[str], pad: str) -> None:
    text = ",".join(f"{pad}{i}{pad}" for i in items) + ("," if items else "")
    assert comma_list(text) == tuple(items)


def test_blank_items_are_dropped() -> None:
    assert comma_list(" a, ,b,,") == ("a", "b")
    assert comma_list("") == ()


def test_settings_expose_parsed_lists() -> None:
    s = Settings(
        kafka_bootstrap="k1:9092, k2:9092",
        web_allowed_hosts="web.example, localhost",
        scorer_metrics_urls="http://s1:9464/metrics,http://s2:9464/metrics",
        scorer_explain_bands="high, medium",
        ingest_tokens="a,b",
    )
    assert s.kafka_servers == ["k1:9092", "k2:9092"]
    assert s.allowed_hosts == ["web.example", "localhost"]
    assert s.scorer_metrics_url_list == ["http://s1:9464/metrics", "http://s2:9464/metrics"]
    assert s.explain_band_set == frozenset({"high", "medium"})
    assert s.ingest_token_set == frozenset({"a", "b"})
    assert Settings(scorer_explain_bands="all, high").explain_band_set is None
