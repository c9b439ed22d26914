"""Operations commands: `patas feedback` (label verdicts after the fact) and `patas retention`."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from patas.cli.common import fail, settings, warehouse_url


def _actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


@click.command("feedback")
@click.argument("message_id", required=False)
@click.option("--verdict", default=None, help="The message's true label: spam or ham.")
@click.option(
    "--source",
    default="moderator",
    show_default=True,
    help="Where the verdict comes from: moderator, user_appeal, ... (a lower-case word).",
)
@click.option("--note", default=None, help="Free text kept with the verdict.")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help='JSONL, one verdict a line: {"id": ..., "verdict": "spam"|"ham", "source": ..., "note": ...}.',
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def feedback(
    message_id: str | None,
    verdict: str | None,
    source: str,
    note: str | None,
    path: Path | None,
    as_json: bool,
) -> None:
    """Record a verdict on an ingested message (by its id), or a file of them.

    The next run's shadow evaluation uses the effective labels (the latest verdict per message
    overrides the ingested label); an active rule whose hits are reversed beyond its profile's
    max_reversed_share is deprecated with reason "feedback".
    """
    import psycopg

    from python_steps.ingest import feedback as fb

    if path is not None and (message_id is not None or verdict is not None):
        fail("give either MESSAGE_ID --verdict spam|ham or --file, not both")
    try:
        if path is not None:
            items = fb.read_feedback_file(path)
        elif message_id is None or verdict is None:
            fail("give MESSAGE_ID and --verdict spam|ham, or --file F.jsonl")
            return
        else:
            items = [fb.make_feedback(message_id, verdict, source, note)]
        with psycopg.connect(warehouse_url(settings())) as conn:
            counts = fb.record_feedback(conn, items, actor=_actor())
            conn.commit()
    except fb.FeedbackError as exc:
        fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(counts, sort_keys=True))
        return
    click.echo(
        f"recorded {counts['recorded']:,} of {counts['received']:,} verdict(s)"
        f" ({counts['unchanged']:,} unchanged; {counts['overrides']:,} change a label,"
        f" {counts['reversals']:,} of them to ham); the next `patas run` evaluates with them"
    )


@click.command("retention")
@click.option("--keep-days", "keep_days", required=True, help="Keep the messages of the last N days of data.")
@click.option("--dry-run", is_flag=True, help="Say what would be archived and deleted; change nothing.")
@click.option(
    "--archive-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the archive goes (default: $PATAS_HOME/archive).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def retention(keep_days: str, dry_run: bool, archive_dir: Path | None, as_json: bool) -> None:
    """Archive messages older than N days (before the newest message) to JSONL.gz, then delete them.

    Messages with an event time age against the newest event time; messages without one against
    the newest ingestion of such messages.

    Rows that rule evidence points at are kept; derived stage-1 tables are purged with them and
    rebuilt by the next run. Holds the run lock: it waits for no run and stops if one is running.
    """
    from python_steps.ingest.retention import RetentionError, apply_retention
    from python_steps.warehouse import connect, run_lock

    try:
        days = int(keep_days)
    except ValueError:
        fail(f"--keep-days must be a whole number of days, not {keep_days[:40]!r}")
        return
    s = settings()
    url = warehouse_url(s)
    try:
        with connect(url, autocommit=True) as conn, run_lock(conn, wait=False):
            result = apply_retention(
                conn, keep_days=days, archive_dir=archive_dir or s.home / "archive", dry_run=dry_run
            )
    except RetentionError as exc:
        fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps({**result, "dry_run": dry_run}, sort_keys=True))
        return
    verb = "would archive and delete" if dry_run else "archived and deleted"
    where = f" ({result['archive']})" if result["archive"] else ""
    cutoffs = " and ".join(
        f"{label} {result[key]}"
        for key, label in (
            ("cutoff", "event time before"),
            ("ingest_cutoff", "untimed messages ingested before"),
        )
        if result[key]
    )
    click.echo(
        f"{cutoffs or 'no messages'}: {verb} {result['purged']:,} message(s){where}; kept"
        f" {result['kept_as_evidence']:,} older one(s) that rule evidence points at; {result['remaining']:,} remain"
    )
