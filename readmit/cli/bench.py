"""`readmit bench ...`: benchmarks that report medians next to same-run baselines.

Benchmarks are commands, never timed assertions in tests: numbers on a shared 2-core
machine vary, ratios against a baseline measured in the same run much less.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import typer

from readmit_core.settings import get_settings

bench_app = typer.Typer(no_args_is_help=True)


@bench_app.command("stream")
def stream(
    quick: bool = typer.Option(False, help="A run of under 2 minutes (shorter phases)."),
    rate: float = typer.Option(100.0, help="Bundles/s in the latency phase."),
    duration: float = typer.Option(None, help="Seconds of the latency phase (60; quick: 20)."),
    scorers: int = typer.Option(1, min=1, help="Scorer processes (the embedded stack)."),
    partitions: int = typer.Option(4, min=1, help="Partitions of the benchmark's topics."),
    clients: int = typer.Option(8, min=1, help="Concurrent HTTP clients when saturating."),
    repeats: int = typer.Option(3, min=1, help="Timed runs of each throughput (medians)."),
    two_scorers: bool = typer.Option(
        False, "--two-scorers", help="Then start a second scorer: two_scorer_ratio."
    ),
    workers: int = typer.Option(
        None, min=1, help="Ingest worker processes (default READMIT_INGEST_WORKERS)."
    ),
    json_path: Path = typer.Option(
        None, "--json", help="Write results as JSON to this file ('-': print it, not the table)."
    ),
    md_path: Path = typer.Option(None, "--markdown", help="Write the Markdown table here."),
    external: bool = typer.Option(
        False, help="Use the running services from READMIT_* settings instead of starting a stack."
    ),
) -> None:
    """Ingest throughput, scorer throughput, POST→score latency and the mapper on a Synthea
    record, each a median of repeated runs with its spread, next to same-run baselines."""
    from readmit.benchmarks.stream import run, write_outputs
    from readmit.cli.stack import exit_on_sigterm
    from readmit.embedded.services import free_port
    from readmit.embedded.stack import Stack
    from readmit_core.settings import PROJECT_ROOT

    exit_on_sigterm()
    base = get_settings()
    duration = duration if duration is not None else (20.0 if quick else 60.0)
    sizes = {
        "saturation_bundles": 600 if quick else 2000,
        "scorer_events": 5000 if quick else 20000,
    }
    if workers is not None:
        base = base.model_copy(update={"ingest_workers": workers})
    if external:
        if two_scorers:
            raise typer.BadParameter("--two-scorers needs the embedded stack (no --external)")
        settings = base
        stack = None
    else:
        settings = base.model_copy(
            update={
                "topic_prefix": f"bench{uuid.uuid4().hex[:6]}.",
                "topic_partitions": partitions,
                "kafka_port": free_port(),
                "ingest_port": free_port(),
                "scorer_metrics_port": 0,
                "explainer_metrics_port": 0,
                "state_dir": base.state_dir / "bench",
            }
        )
        stack = Stack(settings, scorers=scorers, with_web=False).start()
    try:
        results = run(
            settings,
            rate=rate,
            duration=duration,
            clients=clients,
            log=typer.echo,
            repeats=repeats,
            add_scorer=stack.add_scorer if stack is not None and two_scorers else None,
            mapper_record=PROJECT_ROOT / SYNTHEA_RECORD,
            **sizes,
        )
        results["scorers"] = scorers
        results["partitions"] = settings.topic_partitions
    finally:
        if stack is not None:
            stack.stop()
    typer.echo(write_outputs(results, json_path, md_path))


@bench_app.command("scoring")
def scoring(rows: int = typer.Option(5000, help="Rows for the batch measurement.")) -> None:
    """Single-event and batch scoring of the champion vs sklearn on a one-row DataFrame."""
    import orjson

    from model_store.benchmark import measure_scoring
    from model_store.dataset import add_history, load_dataset, record_from_values
    from model_store.registry import Registry

    s = get_settings()
    model = Registry(s.model_dir).load_champion()
    frame = add_history(load_dataset(s.data_path, require_target=False), model.trained.clock).head(
        rows
    )
    records = [
        record_from_values({str(k): v for k, v in row.items()}) for row in frame.to_dict("records")
    ]
    typer.echo(orjson.dumps(measure_scoring(model, records), option=orjson.OPT_INDENT_2).decode())


# A diabetic Synthea record of the conformance corpus: 393 entries, five earlier inpatient
# stays carried in the document (the costliest case for history mapping).
SYNTHEA_RECORD = "tests/fhir_corpus/synthea/293ee354-f8ad-4345-b10c-759fdfdcc082.json.gz"


@bench_app.command("mapper")
def mapper(
    bundles: int = typer.Option(2000, help="Synthesized bundles to map."),
    record: Path = typer.Option(
        Path(SYNTHEA_RECORD), help="A real patient record (.json or .json.gz) to map too."
    ),
    repeats: int = typer.Option(20, help="Times the real record is mapped."),
) -> None:
    """FHIR → feature record throughput vs plain orjson parsing of the same bytes:
    synthesized discharge bundles, and a ~400-entry Synthea patient record."""
    import gzip

    import orjson

    from fhir_mappings.synth import iter_bundles
    from fhir_mappings.throughput import measure, measure_record
    from readmit_core.settings import PROJECT_ROOT

    s = get_settings()
    data = [orjson.dumps(b) for b in iter_bundles(s.data_path, seed=1, limit=bundles)]
    report = measure(data)
    path = record if record.is_absolute() else PROJECT_ROOT / record
    body = path.read_bytes()
    body = gzip.decompress(body) if path.suffix == ".gz" else body
    report["synthea_record"] = {"file": str(record), **measure_record(body, repeats)}
    typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


@bench_app.command("redis-memory")
def redis_memory(
    count: int = typer.Option(20000, min=1, help="Encounters to score and cache (then delete)."),
    versions: int = typer.Option(1, min=1, help="Versions (updates) written per encounter."),
) -> None:
    """Redis bytes per cached score (MEMORY USAGE per key and used_memory delta)."""
    import orjson

    from readmit.benchmarks.redis_memory import RedisMemoryError, measure

    try:
        report = measure(get_settings(), count, versions)
    except RedisMemoryError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
