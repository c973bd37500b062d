"""`readmit rescore`: recompute cached scores from the system of record.

Redis holds only what can be recomputed: after a Redis flush or loss, or to score
again with a new model or a fixed bug, this command reads the encounter versions
ingest accepted in a time window from the state database (``patient_state``) and
publishes the latest version of each encounter to ``features`` again, with the same
``input_key``. Scorers then score them as usual (``risk.scored`` + Redis).

Without ``--force`` scorers skip an encounter whose cached score already comes from
that input, so the command refills exactly what the cache lost and is safe to run
twice. ``--force`` first removes the selected encounters' cached scores, so each is
scored again by the current champion (the web shows "no score" for those encounters
for the seconds until the scorers reach them; the alert feed keeps one open alert per
encounter).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

from readmit_core.errors import ReadmitError, ServiceUnavailable
from readmit_core.settings import get_settings

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class BadTime(ReadmitError, typer.BadParameter):
    """A --since/--until value that is neither ISO-8601 nor a relative age like 6h
    (a click error too, so typer prints it with the usage line)."""

    status = 400
    issue_code = "value"


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """ISO-8601 (naive means UTC) or an age before now: ``90m``, ``6h``, ``2d``."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(value.strip())
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except OverflowError as exc:
            raise BadTime(f"{value!r} reaches before year 1") from exc
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadTime(
            f"{value!r}: use ISO-8601 (2026-12-01T08:00) or an age (90m, 6h, 2d)"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rescore(
    since: str = typer.Option(..., help="Accepted at or after: ISO-8601, or an age (6h, 2d)."),
    until: str = typer.Option(None, help="Accepted before (default: now)."),
    force: bool = typer.Option(
        False, help="Score again even where the cached score is current (new model, fixed bug)."
    ),
    dry_run: bool = typer.Option(False, help="Only count what would be republished."),
) -> None:
    """Recompute cached scores of encounters accepted in a window (after a Redis loss)."""
    import redis

    from ingest.publisher import EventPublisher
    from patient_state.rescore import latest_versions, republish
    from patient_state.store import open_store
    from readmit_core.events import FEATURES_TOPIC
    from readmit_core.log_format import configure
    from readmit_core.score_cache import ScoreCache

    s = get_settings()
    configure(s.log_level)
    start = parse_time(since)
    end = parse_time(until) if until else None
    try:
        store = open_store(s.database_url, s.state_dir, s.topic_prefix)
        rows = store.accepted_since(start.timestamp(), end.timestamp() if end else None)
        latest = latest_versions(rows)
        typer.echo(
            f"{len(rows)} accepted versions since {start.isoformat()}: "
            f"{len(latest)} encounters to rescore"
        )
        if dry_run or not latest:
            return
        if force:
            client = redis.Redis.from_url(s.redis_url, socket_timeout=5, socket_connect_timeout=5)
            ScoreCache(client, s.topic_prefix, s.score_ttl_seconds).forget(
                [row.encounter_id for row in latest]
            )
        publisher = EventPublisher(s)
        try:
            sent = republish(store, publisher, latest)
        finally:
            publisher.close()
    except (ServiceUnavailable, redis.RedisError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"republished {sent} encounter versions to {s.topic(FEATURES_TOPIC)}")


def register_rescore_command(app: typer.Typer) -> None:
    app.command()(rescore)
