"""`readmit train|predict|report` and `readmit models list|show|promote`.

Heavy libraries (pandas, scikit-learn, LightGBM, matplotlib) are imported inside the
commands so that ``readmit --help`` stays instant. Bad input ends with one clear message
naming the column/row and exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import NoReturn

import typer

models_app = typer.Typer(no_args_is_help=True)

EXIT_BAD_INPUT = 2


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _registry_root(root: Path | None) -> Path:
    from readmit_core.settings import get_settings

    return root if root is not None else get_settings().model_dir


def train_command(
    data: Path = typer.Option(None, "--data", help="CSV in the UCI format (default: bundled)."),
    models: str = typer.Option("lr,rf,xgb,lgbm,mlp", "--models", help="Comma-separated."),
    registry: Path = typer.Option(None, "--registry", help="Registry directory."),
    sample_patients: int = typer.Option(None, "--sample-patients", help="Train on a sample."),
    seed: int = typer.Option(42, "--seed"),
    no_promote: bool = typer.Option(False, "--no-promote", help="Never move the champion."),
) -> None:
    """Train, evaluate, calibrate and register models; promote the champion by rule."""
    from model_store.dataset import DatasetError
    from model_store.models import UnknownModelError
    from model_store.registry import Registry
    from model_store.train import train_models
    from readmit_core.settings import comma_list, get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data_path = data if data is not None else get_settings().data_path
    root = _registry_root(registry)
    names = comma_list(models)
    started = time.perf_counter()
    try:
        versions = train_models(
            data_path,
            root,
            names,
            sample_patients=sample_patients,
            seed=seed,
            promote=not no_promote,
        )
    except (DatasetError, UnknownModelError, FileNotFoundError) as exc:
        _fail(str(exc))
    elapsed = time.perf_counter() - started
    reg = Registry(root)
    champion = reg.champion_version()
    typer.echo(
        f"{'version':<34} {'cv AUC':>7} {'test AUC':>9} {'95% CI':>15} {'ECE':>6} {'Brier':>6}"
    )
    for version in versions:
        m = reg.manifest(version)["metrics"]
        t = m["test"]
        mark = " *" if version == champion else ""
        typer.echo(
            f"{version:<34} {m['cv']['roc_auc']:7.4f} {t['roc_auc']:9.4f} "
            f"{t['roc_auc_ci_low']:7.3f}-{t['roc_auc_ci_high']:.3f} {t['ece']:6.4f} "
            f"{t['brier']:6.4f}{mark}"
        )
    if versions:
        lace = reg.manifest(versions[0])["metrics"]["baseline_lace"]
        typer.echo(f"{'LACE baseline':<34} {'':>7} {lace['roc_auc']:9.4f}")
    typer.echo(f"champion: {champion}   wall time: {elapsed:.1f} s")


def predict_command(
    input_path: Path = typer.Option(..., "--input", help="CSV in the UCI format."),
    output_path: Path = typer.Option(..., "--output", help="Where to write the scores."),
    registry: Path = typer.Option(None, "--registry", help="Registry directory."),
) -> None:
    """Score a CSV with the champion: writes encounter_id,probability,band per row.

    History columns are computed from the file itself (each patient's earlier rows by
    encounter_id, dated by the model's encounter clock), the way training computes them.
    """
    import csv

    from model_store.dataset import DatasetError, add_history, load_dataset
    from model_store.registry import ModelRegistryError, Registry

    try:
        model = Registry(_registry_root(registry)).load_champion()
        frame = add_history(load_dataset(input_path, require_target=False), model.trained.clock)
    except (DatasetError, ModelRegistryError, FileNotFoundError) as exc:
        _fail(str(exc))
    from model_store.dataset import feature_tuples

    matrix = model.trained.encoder.encode_tuples(feature_tuples(frame))
    probabilities = model.trained.predict_matrix(matrix)
    bands = model.trained.bands.bands(probabilities)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["encounter_id", "probability", "band"])
        for encounter, probability, band in zip(
            frame["encounter_id"], probabilities, bands, strict=True
        ):
            writer.writerow([encounter, f"{probability:.6f}", band])
    typer.echo(f"scored {len(frame)} rows with {model.version} -> {output_path}")


def report_command(
    out: Path = typer.Option(None, "--out", help="Output directory (default var/reports)."),
    data: Path = typer.Option(None, "--data", help="CSV in the UCI format (default: bundled)."),
    registry: Path = typer.Option(None, "--registry", help="Registry directory."),
) -> None:
    """Write the EDA report and the model card (static HTML + PNG)."""
    from model_store.dataset import DatasetError
    from model_store.registry import ModelRegistryError
    from model_store.report import build_reports
    from readmit_core.settings import get_settings

    settings = get_settings()
    out_dir = out if out is not None else settings.state_dir / "reports"
    try:
        pages = build_reports(
            data if data is not None else settings.data_path,
            _registry_root(registry),
            out_dir,
        )
    except (DatasetError, ModelRegistryError, FileNotFoundError) as exc:
        _fail(str(exc))
    for page in pages:
        typer.echo(f"wrote {page}")


@models_app.command("list")
def list_command(registry: Path = typer.Option(None, "--registry")) -> None:
    """All model versions with their headline metrics; * marks the champion."""
    from model_store.registry import Registry

    manifests = Registry(_registry_root(registry)).list()
    if not manifests:
        typer.echo("no models; run `readmit train`")
        return
    for m in manifests:
        test = m.get("metrics", {}).get("test", {})
        mark = "*" if m.get("champion") else " "
        label = str(m.get("model_label", ""))[:22]
        auc, ece = test.get("roc_auc", float("nan")), test.get("ece", float("nan"))
        typer.echo(
            f"{mark} {m['version']:<34} {label:<22} AUC {auc:.4f}  ECE {ece:.4f}  "
            f"{m.get('created_at', '')}"
        )


@models_app.command("show")
def show_command(version: str, registry: Path = typer.Option(None, "--registry")) -> None:
    """Print a version's manifest (JSON)."""
    from model_store.registry import ModelRegistryError, Registry

    try:
        manifest = Registry(_registry_root(registry)).manifest(version)
    except ModelRegistryError as exc:
        _fail(str(exc))
    json.dump(manifest, sys.stdout, indent=2)
    typer.echo("")


@models_app.command("promote")
def promote_command(version: str, registry: Path = typer.Option(None, "--registry")) -> None:
    """Make VERSION the champion (verified: it must load)."""
    from model_store.registry import ModelRegistryError, Registry

    try:
        Registry(_registry_root(registry)).promote(version)
    except ModelRegistryError as exc:
        _fail(str(exc))
    typer.echo(f"champion: {version}")


@models_app.command("verify")
def verify_command(registry: Path = typer.Option(None, "--registry")) -> None:
    """Check every version's signature, sha256 and feature set (nothing is unpickled).

    Exit 1 if any version would be refused: run it after copying a registry or rotating
    READMIT_MODEL_VERIFY_KEY.
    """
    from model_store.registry import JOBLIB_FORMAT, ModelRegistryError, Registry
    from readmit_core.errors import ReadmitError

    reg = Registry(_registry_root(registry))
    versions = sorted(p.parent.name for p in reg.root.glob("*/manifest.json"))
    if not versions:
        _fail(f"no models in {reg.root}")
    refused = 0
    for version in versions:
        try:
            manifest = reg.verify(version)
        except (ModelRegistryError, ReadmitError) as exc:
            refused += 1
            typer.echo(f"REFUSED  {version}: {exc}")
        else:  # the format says whether loading it unpickles (joblib) or not
            typer.echo(f"ok       {version} ({manifest.get('artifact_format', JOBLIB_FORMAT)})")
    if refused:
        raise typer.Exit(1)


@models_app.command("keygen")
def keygen_command() -> None:
    """Print a new Ed25519 pair: the private key for training, the public one for serving."""
    from model_store.signing import new_key_pair

    private, public = new_key_pair()
    typer.echo(f"READMIT_MODEL_SIGNING_KEY={private}")
    typer.echo(f"READMIT_MODEL_VERIFY_KEY={public}")


def register_model_commands(app: typer.Typer) -> None:
    """Attach the top-level model commands (train, predict, report) to the main CLI."""
    app.command("train")(train_command)
    app.command("predict")(predict_command)
    app.command("report")(report_command)
