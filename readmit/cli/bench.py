"""`readmit bench ...`: benchmarks that report medians next to same-run baselines."""

from __future__ import annotations

import typer

bench_app = typer.Typer(no_args_is_help=True)
