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
