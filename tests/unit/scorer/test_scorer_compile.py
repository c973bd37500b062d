"""The scorer compiles each champion's forest once, and never one that left service."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka.errors import KafkaError

from readmit_core.backoff import Backoff
from readmit_core.settings import Settings
from scorer.consumer import Scorer, ScorerWorker


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


@dataclass
class GatedModel(FakeModel):
    """A model whose compile finishes only when the test opens the gate."""

    gate: threading.Event = field(default_factory=threading.Event)

    def compile_in_background(self, still_wanted: Callable[[], bool]) -> threading.Thread:
        super().compile_in_background(still_wanted)
        thread = threading.Thread(target=self.gate.wait, args=(30,), daemon=True)
        thread.start()
        return thread


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    done = threading.Event()
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        done.wait(0.01)


def test_the_scorer_joins_the_group_only_once_its_model_is_compiled() -> None:
    model = GatedModel("m-1")
    scorer = Scorer(FakeRegistry(model), compile_trees=True)  # type: ignore[arg-type]
    joined: list[object] = []

    def new_consumer(listener: object) -> object:
        joined.append(listener)
        raise KafkaError("no broker in this test")  # the step stops right after joining

    worker = ScorerWorker(
        Settings(),
        cache=None,  # type: ignore[arg-type]
        scorer=scorer,
        new_consumer=new_consumer,  # type: ignore[arg-type]
        new_producer=lambda: None,  # type: ignore[arg-type, return-value]
    )
    worker._backoff = Backoff(first_s=0.0, cap_s=0.0)
    for _ in range(3):
        assert worker.step() == 0
    assert not scorer.ready()
    assert joined == []  # no partitions taken while the forest compiles
    model.gate.set()
    _until(scorer.ready)
    worker.step()
    assert joined == [worker.ownership]


def test_a_reloaded_champion_serves_only_once_compiled() -> None:
    first, second = FakeModel("m-1"), GatedModel("m-2")
    registry = FakeRegistry(first)
    scorer = Scorer(registry, compile_trees=True)  # type: ignore[arg-type]
    _reload(scorer, registry, second)
    assert scorer.model is first  # the current model serves while the new one compiles
    assert second.requests[0]()  # the queued compile is still wanted
    scorer.maybe_reload()
    assert scorer.model is first
    second.gate.set()
    _until(lambda: (scorer.maybe_reload(), scorer.model is second)[1])
    assert not first.requests[0]()
