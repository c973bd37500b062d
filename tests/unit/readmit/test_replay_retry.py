"""The replay's POST: retries a 503 after its Retry-After and a refused connection, and
gives up with an answer (never an exception) when ingest stays unavailable."""

from __future__ import annotations

import httpx

from readmit.replay import ReplayStats, post_bundle

BUNDLE = {"resourceType": "Bundle", "type": "transaction", "entry": []}


def client_answering(*answers: int | Exception) -> tuple[httpx.Client, list[int]]:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers[min(len(calls), len(answers) - 1)]
        calls.append(1)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers={"Retry-After": "0"})

    return httpx.Client(transport=httpx.MockTransport(handler)), calls


def test_503_is_retried_until_accepted() -> None:
    client, calls = client_answering(503, 503, 201)
    stats = ReplayStats()
    resp = post_bundle(client, "http://ingest", "t", BUNDLE, stats, max_retries=5)
    assert resp is not None
    assert resp.status_code == 201
    assert (len(calls), stats.retried) == (3, 2)


def test_refusal_is_returned_at_once() -> None:
    client, calls = client_answering(422)
    stats = ReplayStats()
    resp = post_bundle(client, "http://ingest", "t", BUNDLE, stats)
    assert resp is not None
    assert resp.status_code == 422
    assert (len(calls), stats.retried) == (1, 0)


def test_always_503_returns_the_last_answer() -> None:
    client, calls = client_answering(503)
    stats = ReplayStats()
    resp = post_bundle(client, "http://ingest", "t", BUNDLE, stats, max_retries=4)
    assert resp is not None
    assert resp.status_code == 503
    assert (len(calls), stats.retried) == (4, 3)


def test_never_answering_gives_up_with_none() -> None:
    client, calls = client_answering(httpx.ConnectError("refused"))
    stats = ReplayStats()
    resp = post_bundle(
        client, "http://ingest", "t", BUNDLE, stats, max_retries=3, connect_wait_s=0.0
    )
    assert resp is None
    assert (len(calls), stats.retried) == (3, 2)
