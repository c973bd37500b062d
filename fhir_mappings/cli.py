"""`readmit fhir ...`: synthesize FHIR from dataset rows, map FHIR to features, check parity."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def synth(
    input: Path = typer.Option(..., "--input", help="Dataset CSV (.csv or .csv.gz)."),
    out: str = typer.Option(
        ..., "--out", help="Directory for <encounter_id>.json, or - for NDJSON on stdout."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed; same seed, same bundles."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first K rows."),
) -> None:
    """Turn each dataset row into a FHIR R4 transaction Bundle."""
    import orjson

    from fhir_mappings.synth import iter_bundles

    if out == "-":
        write = sys.stdout.buffer.write
        for bundle in iter_bundles(input, seed, limit):
            write(orjson.dumps(bundle) + b"\n")
        sys.stdout.flush()
        return
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for bundle in iter_bundles(input, seed, limit):
        index = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
        )
        (directory / f"{index['id']}.json").write_bytes(
            orjson.dumps(bundle, option=orjson.OPT_INDENT_2)
        )
        count += 1
    typer.echo(f"wrote {count} bundles to {directory}", err=True)


@app.command()
def features(
    file: str = typer.Argument(
        ..., help="A FHIR JSON document (any Bundle type or a loose resource), or - for stdin."
    ),
) -> None:
    """Print the feature record(s) of one FHIR document.

    Invalid input prints an OperationOutcome and exits 2.
    """
    import orjson

    from fhir_mappings.errors import FhirMappingError, InvalidJson
    from fhir_mappings.mapper import map_document

    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        outcome = InvalidJson(f"cannot read {file}: {exc.strerror}").to_operation_outcome()
        sys.stdout.buffer.write(orjson.dumps(outcome, option=orjson.OPT_INDENT_2) + b"\n")
        raise typer.Exit(2) from None
    try:
        mapped = map_document(data)
    except FhirMappingError as exc:
        sys.stdout.buffer.write(
            orjson.dumps(exc.to_operation_outcome(), option=orjson.OPT_INDENT_2) + b"\n"
        )
        raise typer.Exit(2) from None
    out = [
        {
            "encounter_id": m.encounter_id,
            "patient_id": m.patient_id,
            "ward": m.ward,
            "input_key": m.input_key,
            "admitted_at": m.admitted_at,
            "discharged_at": m.discharged_at,
            "record": m.record.columns(),
            "missing": list(m.missing),
        }
        for m in mapped
    ]
    sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")


@app.command()
def parity(
    input: Path = typer.Option(..., "--input", help="Dataset CSV (.csv or .csv.gz)."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first K rows."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthesizer."),
    workers: int | None = typer.Option(None, "--workers", help="Processes (default: up to 2)."),
    validate: bool = typer.Option(
        True,
        "--validate/--no-validate",
        help="Validate every resource with fhir.resources (default) or map only (about 5x faster).",
    ),
) -> None:
    """Synthesize and map back every row; report mismatches per column; exit 1 on any."""
    import orjson

    from fhir_mappings.parity import run_parity

    report = run_parity(input, seed=seed, limit=limit, workers=workers, validate=validate)
    sys.stdout.buffer.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    if report.total:
        raise typer.Exit(1)
