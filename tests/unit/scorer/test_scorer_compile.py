"""The scorer compiles each champion's forest once, and never one that left service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scorer.consumer import Scorer


@dataclass
class FakeModel:
    version: str
    requests: list[Callable[[], bool]] = field(default_factory=list)

    def compile_in_background(self, still_wanted: Callable[[], bool]) -> None:
        self.requests.append(still_wanted)


@dataclass
class FakeRegistry:
    champion: FakeModel

    def load_champion(self) -> FakeModel:
        return self.champion

    def champion_version(self) -> str:
        return self.champion.version


def _reload(scorer: Scorer, registry: FakeRegistry, model: FakeModel) -> None:
    registry.champion = model
    scorer._checked = float("-inf")  # the reload check is due
    scorer.maybe_reload()


def test_each_champion_is_compiled_while_it_serves() -> None:
    first, second = FakeModel("m-1"), FakeModel("m-2")
    registry = FakeRegistry(first)
    scorer = Scorer(registry, compile_trees=True)  # type: ignore[arg-type]
    assert len(first.requests) == 1
    assert first.requests[0]()
    _reload(scorer, registry, second)
    assert scorer.model is second
    assert len(second.requests) == 1
    assert second.requests[0]()
    assert not first.requests[0]()  # a queued compile of the old model is skipped


def test_compiling_can_be_switched_off() -> None:
    model = FakeModel("m-1")
    registry = FakeRegistry(model)
    scorer = Scorer(registry, compile_trees=False)  # type: ignore[arg-type]
    _reload(scorer, registry, FakeModel("m-2"))
    assert model.requests == []
    assert scorer.model.requests == []  # type: ignore[attr-defined]
