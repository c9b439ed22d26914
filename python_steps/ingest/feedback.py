"""Label feedback: verdicts on already ingested messages, from moderators, user appeals or the API.

A verdict names a message by its ``external_id`` (the ``id`` of the ingested line), says ``spam``
or ``ham`` and where it came from (``source``: ``moderator``, ``user_appeal``, ... a lower-case
word). :func:`record_feedback` appends the verdicts to ``patas.label_feedback`` in one transaction:
all or nothing, and nothing at all when one id is unknown. The dbt model
``int_message_labels_overridden`` resolves them (with moderator outcomes from ingest, such as
``unbanned``) into effective labels: the latest verdict per message wins, every earlier one stays.

The feedback file (``patas feedback --file f.jsonl``) holds one JSON object per line with the keys
``id`` (or ``external_id``), ``verdict``, optionally ``source`` and ``note``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg

from python_steps import tables

VERDICTS = ("spam", "ham")
SOURCE_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
DEFAULT_SOURCE = "moderator"
MAX_NOTE_CHARS = 2000
MAX_ID_CHARS = 1000
MAX_FILE_ITEMS = 1_000_000


class FeedbackError(ValueError):
    """Bad feedback input (a bad field, an unknown message id): one line for the user."""


@dataclass(frozen=True)
class Feedback:
    external_id: str
    verdict: str
    source: str = DEFAULT_SOURCE
    note: str | None = None


def make_feedback(
    external_id: Any, verdict: Any, source: Any = None, note: Any = None, *, where: str = ""
) -> Feedback:
    """Validate one verdict (``where`` prefixes the error, e.g. ``line 3: ``)."""
    if not isinstance(external_id, str) or not external_id.strip():
        raise FeedbackError(f"{where}the message id must be a non-empty string")
    if len(external_id) > MAX_ID_CHARS or "\x00" in external_id:
        raise FeedbackError(f"{where}the message id is not a usable id")
    if verdict not in VERDICTS:
        raise FeedbackError(f"{where}verdict must be 'spam' or 'ham', not {str(verdict)[:40]!r}")
    source = DEFAULT_SOURCE if source is None else source
    if not isinstance(source, str) or not SOURCE_RE.fullmatch(source):
        raise FeedbackError(
            f"{where}source must be a lower-case word such as 'moderator' or 'user_appeal', not {str(source)[:40]!r}"
        )
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS or "\x00" in note):
        raise FeedbackError(f"{where}note must be a string of at most {MAX_NOTE_CHARS} characters")
    return Feedback(external_id, verdict, source, note)


def read_feedback_file(path: Path) -> list[Feedback]:
    """The verdicts of a JSONL feedback file; the first bad line is an error naming its number."""
    items: list[Feedback] = []
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FeedbackError(f"{path}: {exc.strerror or exc}") from None
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise FeedbackError(f"{path}: line {n}: not a JSON object") from None
        if not isinstance(obj, dict):
            raise FeedbackError(f"{path}: line {n}: not a JSON object")
        unknown = set(obj) - {"id", "external_id", "verdict", "source", "note"}
        if unknown:
            raise FeedbackError(f"{path}: line {n}: unknown field(s) {sorted(unknown)}")
        items.append(
            make_feedback(
                obj.get("id", obj.get("external_id")),
                obj.get("verdict"),
                obj.get("source"),
                obj.get("note"),
                where=f"{path}: line {n}: ",
            )
        )
        if len(items) > MAX_FILE_ITEMS:
            raise FeedbackError(f"{path}: more than {MAX_FILE_ITEMS:,} verdicts; split the file")
    if not items:
        raise FeedbackError(f"{path}: no feedback lines")
    return items


def ensure_schema(conn: psycopg.Connection) -> None:
    tables.ensure_all(conn)


def record_feedback(conn: psycopg.Connection, items: Sequence[Feedback], *, actor: str) -> dict[str, Any]:
    """Append ``items`` to ``patas.label_feedback`` in one transaction and say what changed.

    Every id must name an ingested message (else :class:`FeedbackError`, nothing written). A verdict
    equal to the message's latest feedback (same verdict, same source) is not appended again (re-sending a
    file changes nothing). Returns counts: ``recorded``, ``unchanged``, ``overrides`` (recorded
    verdicts that differ from the label the message was ingested with), ``reversals`` (of those,
    spam or unlabelled -> ham).
    """
    if not items:
        raise FeedbackError("no feedback given")
    ensure_schema(conn)
    ids = sorted({f.external_id for f in items})
    with conn.transaction():
        rows = conn.execute(
            """
            select m.external_id, m.message_id, m.is_spam, latest.verdict, latest.source
            from raw.messages as m
            left join lateral (
                select verdict, source from patas.label_feedback as f
                where f.message_id = m.message_id order by f.feedback_id desc limit 1
            ) as latest on true
            where m.external_id = any(%s)
            """,
            (ids,),
        ).fetchall()
        known = {r[0]: r[1:] for r in rows}
        unknown = [i for i in ids if i not in known]
        if unknown:
            shown = ", ".join(repr(i[:60]) for i in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise FeedbackError(f"unknown message id {shown}{more}: ingest the message first")
        recorded = unchanged = overrides = reversals = 0
        values = []
        last: dict[str, tuple[str, str]] = {}
        for f in items:
            message_id, is_spam, prev_verdict, prev_source = known[f.external_id]
            prev = last.get(f.external_id, (prev_verdict, prev_source))
            if prev == (f.verdict, f.source):
                unchanged += 1
                continue
            last[f.external_id] = (f.verdict, f.source)
            values.append((message_id, f.external_id, f.verdict, f.source, f.note, actor))
            recorded += 1
            if is_spam is None or is_spam != (f.verdict == "spam"):
                overrides += 1
                if f.verdict == "ham":
                    reversals += 1
        with conn.cursor() as cur:
            cur.executemany(
                "insert into patas.label_feedback (message_id, external_id, verdict, source, note, actor)"
                " values (%s, %s, %s, %s, %s, %s)",
                values,
            )
    return {
        "received": len(items),
        "recorded": recorded,
        "unchanged": unchanged,
        "overrides": overrides,
        "reversals": reversals,
    }


def feedback_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Feedback rows per verdict (for the report and /metrics); empty before any feedback."""
    if not conn.execute("select to_regclass(%s) is not null", (tables.LABEL_FEEDBACK,)).fetchone()[0]:
        return {}
    rows: Iterable = conn.execute(
        "select verdict, count(*) from patas.label_feedback group by verdict order by verdict"
    ).fetchall()
    return {v: n for v, n in rows}
