"""`readmit ehr keygen|jwks`: our SMART Backend Services key pair for reading the EHR.

The EHR registers our client with the public JWKS these commands print; the private
key file stays with ingest (READMIT_EHR_PRIVATE_KEY_FILE). infra/OPERATIONS.md
("Subscriptions from the EHR") walks through the registration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NoReturn

import typer

ehr_app = typer.Typer(no_args_is_help=True)

EXIT_BAD_INPUT = 2


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@ehr_app.command("keygen")
def keygen_command(
    out: Path = typer.Option(..., help="Where to write the private key (PEM, mode 0600)."),
    alg: str = typer.Option("ES384", help="ES384 (P-384) or RS384 (RSA 3072)."),
) -> None:
    """Write a new private key and print the public JWKS the EHR registers."""
    from ingest.ehr_keys import UnusableKey, generate_private_key, private_pem, signing_key

    if out.exists():
        _fail(f"{out} exists; refusing to overwrite a key an EHR may have registered")
    try:
        private = generate_private_key(alg)
    except UnusableKey as exc:
        _fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem(private))
    typer.echo(json.dumps(signing_key(private, out).jwks(), indent=2))


@ehr_app.command("jwks")
def jwks_command(
    key: Path | None = typer.Option(
        None, help="Private key file; default READMIT_EHR_PRIVATE_KEY_FILE."
    ),
) -> None:
    """Print the public JWKS of an existing key (to register it again, or rotate)."""
    from ingest.ehr_keys import UnusableKey, load_signing_key
    from readmit_core.settings import get_settings

    try:
        loaded = load_signing_key(key or get_settings().ehr_private_key_file)
    except UnusableKey as exc:
        _fail(str(exc))
    typer.echo(json.dumps(loaded.jwks(), indent=2))
