"""The `readmit` command: one entry point whose sub-commands belong to the components.

Each component owns its commands (``fhir_mappings.cli``, ``model_store.cli``,
``scorer.cli``, ``ingest.cli``, ``readmit.cli.stack``); this module only assembles them, so
the tree shows who implements what. Heavy imports happen inside commands, which keeps
``readmit --help`` instant.
"""

from __future__ import annotations

import typer

from fhir_mappings.cli import app as fhir_app
from ingest.cli import ehr_app
from model_store.cli import models_app, register_model_commands
from readmit.cli.bench import bench_app
from readmit.cli.rescore import register_rescore_command
from readmit.cli.stack import register_stack_commands
from readmit.cli.state import state_app

app = typer.Typer(
    name="readmit",
    help="Streaming 30-day readmission risk scoring over HL7 FHIR R4.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(fhir_app, name="fhir", help="FHIR R4 <-> feature records: synth, features, parity.")
app.add_typer(models_app, name="models", help="The model registry: list, show, promote.")
register_model_commands(app)
register_stack_commands(app)
app.add_typer(bench_app, name="bench", help="Benchmarks (medians, against same-run baselines).")
register_rescore_command(app)
app.add_typer(state_app, name="state", help="The patient state database: migrate, import-redis.")
app.add_typer(ehr_app, name="ehr", help="Our SMART client key for fetching from the EHR.")


def main() -> None:
    app()
