"""Commands that run the system: up, ingest, scorer, explainer, lag, replay, bench."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import typer

from readmit_core.errors import ServiceUnavailable
from readmit_core.settings import get_settings


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, and make sure Ctrl-C raises KeyboardInterrupt, so the
    `finally` blocks stop the stack's children (a shell starts background jobs with SIGINT
    ignored, which Python would otherwise inherit)."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def up(
    replay: bool = typer.Option(True, help="Post a gentle replay of synthesized discharges."),
    rate: float = typer.Option(
        None, help="Replay rate in bundles/s (default READMIT_REPLAY_RATE)."
    ),
    scorers: int = typer.Option(1, min=1, help="Scorer processes to run."),
) -> None:
    """Start everything on this machine (embedded broker/Redis) and print the URLs."""
    from readmit.embedded.stack import Stack, wait_for_interrupt
    from readmit_core.log_format import configure

    settings = get_settings()
    configure(settings.log_level)
    exit_on_sigterm()
    typer.echo("starting: broker, redis, model check, ingest, scorer, web ... (Ctrl-C stops)")
    stack = Stack(settings, scorers=scorers)
    try:
        stack.start()
    except ServiceUnavailable as exc:
        _fail(str(exc))
    stop = threading.Event()
    try:
        typer.echo("")
        typer.secho("readmit is up", fg=typer.colors.GREEN, bold=True)
        if settings.embedded:
            typer.secho(
                "  DEMO: READMIT_EMBEDDED=true uses public tokens and keys; never real patients "
                "(README 'Security')",
                fg=typer.colors.YELLOW,
            )
        typer.echo(f"  web (dashboards, REST, FHIR, CDS Hooks): {settings.web_url}")
        typer.echo(f"  FHIR ingest:                             {settings.ingest_url}/fhir")
        typer.echo(f"  Kafka bootstrap:                         {settings.kafka_bootstrap}")
        typer.echo(f"  Redis:                                   {settings.redis_url}")
        typer.echo(f"  scorer metrics:                          {settings.scorer_metrics_urls}")
        if not settings.scorer_explain_inline:
            typer.echo(
                "  explainer health/metrics:                "
                f"http://127.0.0.1:{settings.explainer_metrics_port}/readyz, /metrics"
            )
        typer.echo(f"  logs:                                    {stack.log_dir}")
        if stack.web_credentials.strip():
            typer.echo("")
            typer.echo(stack.web_credentials.rstrip())
        if replay:
            from readmit.replay import replay_in_background

            replay_in_background(settings, rate or settings.replay_rate, stop)
            per_s = rate or settings.replay_rate
            typer.echo(f"  demo replay: {per_s} bundles/s (--no-replay turns it off)")
        wait_for_interrupt(stack)
    except ServiceUnavailable as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    finally:
        stop.set()
        typer.echo("stopping ...")
        stack.stop()


def ingest() -> None:
    """Run the FHIR ingest API in this process (production entry point)."""
    import uvicorn

    from ingest.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
    from readmit_core.kafka_clients import check_broker
    from readmit_core.log_format import configure

    s = get_settings()
    configure(s.log_level)
    try:
        check_broker(s)
    except ServiceUnavailable as exc:
        _fail(str(exc))
    if s.ingest_workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # set before the workers start: each imports ingest.metrics in multiprocess mode
        os.environ[MULTIPROC_ENV] = str(prepare_multiprocess_dir(s.state_dir / "ingest-metrics"))
    uvicorn.run(
        "ingest.app:create_app",
        factory=True,
        host=s.ingest_host,
        port=s.ingest_port,
        workers=s.ingest_workers,
        access_log=False,
    )


def scorer(
    metrics_port: int = typer.Option(None, help="Override READMIT_SCORER_METRICS_PORT (0 = off)."),
) -> None:
    """Run one scorer process of the consumer group (production entry point)."""
    from readmit_core.log_format import configure
    from scorer.main import run

    s = get_settings()
    configure(s.log_level)
    try:
        run(s, metrics_port)
    except ServiceUnavailable as exc:
        _fail(str(exc))


def explainer(
    metrics_port: int = typer.Option(
        None, help="Override READMIT_EXPLAINER_METRICS_PORT (0 = off)."
    ),
) -> None:
    """Run one explainer process: factors for the scores scorers publish ``factors_pending``
    (``READMIT_SCORER_EXPLAIN_INLINE=false``); its own consumer group on ``risk.scored``."""
    from readmit_core.log_format import configure
    from scorer.explainer import run

    s = get_settings()
    configure(s.log_level)
    try:
        run(s, metrics_port)
    except ServiceUnavailable as exc:
        _fail(str(exc))


def lag(group: str = typer.Option(None, help="Consumer group (default: the scorers').")) -> None:
    """Print consumer lag per partition (log-end offset - committed offset) on the topic the
    group consumes: features for the scorers, risk.scored for the explainers and the feed."""
    from readmit_core.events import FEATURES_TOPIC, SCORED_TOPIC
    from scorer.lag import consumer_lag

    s = get_settings()
    group = group or s.scorer_group
    topic = SCORED_TOPIC if group in (s.explainer_group, s.alerts_group) else FEATURES_TOPIC
    try:
        rows = consumer_lag(s.kafka_bootstrap, group, s.topic(topic))
    except ServiceUnavailable as exc:
        _fail(str(exc))
        return
    typer.echo(f"{'topic':<24} {'partition':>9} {'end':>10} {'committed':>10} {'lag':>8}")
    for r in rows:
        committed = "-" if r.committed is None else str(r.committed)
        typer.echo(f"{r.topic:<24} {r.partition:>9} {r.end_offset:>10} {committed:>10} {r.lag:>8}")
    typer.echo(f"total lag: {sum(r.lag for r in rows)}")


def replay(
    input: Path = typer.Option(
        None, "--input", help="CSV in the UCI format (default: bundled data)."
    ),
    rate: float = typer.Option(10.0, help="Bundles per second."),
    limit: int = typer.Option(None, help="Stop after this many bundles."),
    seed: int = typer.Option(7, help="Synthesizer seed."),
    url: str = typer.Option(None, help="Ingest base URL (default from settings)."),
) -> None:
    """Post synthesized discharge Bundles to the ingest API at a steady rate."""
    from readmit.replay import run_replay

    s = get_settings()
    stats = run_replay(s, input or s.data_path, rate, limit, seed, base_url=url, progress=True)
    typer.echo(f"sent {stats.sent}, accepted {stats.accepted}, refused {stats.refused}")
    typer.echo(f"retried after 503/connection errors: {stats.retried}")
    if stats.unanswered:
        typer.echo(f"gave up (ingest unavailable after every retry): {stats.unanswered}", err=True)
    if stats.refused or stats.unanswered:
        raise typer.Exit(1)


def register_stack_commands(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(ingest)
    app.command()(scorer)
    app.command()(explainer)
    app.command()(lag)
    app.command()(replay)


__all__ = ["register_stack_commands", "sys"]
