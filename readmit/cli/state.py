"""`readmit state …`: the patient state database (``patient_state``) for operators."""

from __future__ import annotations

import typer

from readmit_core.errors import ServiceUnavailable
from readmit_core.settings import get_settings

state_app = typer.Typer(no_args_is_help=True)


@state_app.command()
def migrate() -> None:
    """Apply the state database's schema migrations (ingest also does this at start)."""
    from patient_state.migrations import current_version
    from patient_state.store import open_store

    s = get_settings()
    try:
        store = open_store(s.database_url, s.state_dir, s.topic_prefix)
    except ServiceUnavailable as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"state schema at version {current_version(store.db)} ({store.db.where})")


@state_app.command("import-redis")
def import_redis() -> None:
    """Copy patient history and loose resources kept in Redis by releases before 2026-12."""
    import redis

    from patient_state.redis_import import import_from_redis
    from patient_state.store import open_store

    s = get_settings()
    try:
        store = open_store(s.database_url, s.state_dir, s.topic_prefix)
        client = redis.Redis.from_url(s.redis_url, socket_timeout=10, socket_connect_timeout=5)
        done = import_from_redis(client, s.topic_prefix, store)
    except (ServiceUnavailable, redis.RedisError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"imported {done.patients} patients: {done.visits} visits, {done.stays} index stays, "
        f"{done.resources} kept resources"
    )
