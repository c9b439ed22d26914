"""Ingestion into a real Postgres: exact accounting, quarantine, idempotency, atomicity."""

from __future__ import annotations

import gzip
from pathlib import Path

import psycopg
import pytest

from python_steps.ingest.load import ensure_schema, ingest_file

pytestmark = pytest.mark.integration

# One line per case; (line number, reason code or None for a good row).
MIXED: list[tuple[bytes, str | None]] = [
    (
        b'{"id": "m1", "text": "Win a prize at rwd.li", "is_spam": true, "timestamp": "2026-01-02T03:04:05Z"}',
        None,
    ),
    (b'{"text": "no id here", "is_spam": "spam", "timestamp": 1767323045}', None),
    (b'{"id": "m3", "text": ', "malformed_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"id": "m5"}', "missing_text"),
    (b'{"id": "m6", "text": "   "}', "empty_text"),
    (b'{"id": "m7", "text": "a\x00b"}', "nul_byte"),
    (b'{"id": "m8", "text": "a\\u0000b"}', "nul_byte"),
    (b'{"id": "m9", "text": "caf\xe9"}', "invalid_utf8"),
    (b'{"id": "m10", "text": "hi", "is_spam": "maybe"}', "unknown_label"),
    (b'{"id": "m11", "text": "hi", "timestamp": "yesterday"}', "bad_timestamp"),
    (b'{"id": "m12", "text": "' + b"x" * 300 + b'"}', "text_too_large"),
    (b'{"id": "m13", "text": "hi", "meta": [1]}', "bad_meta"),
    (b"", "blank_line"),
    (
        b'{"message_id": "m15", "event_time": "2026-01-02T05:00:00+02:00", "label": "ham", "text": "see you", "src": "x"}',
        None,
    ),
    (b'{"id": "m1", "text": "same id, later line", "is_spam": false}', None),  # an in-file duplicate
    (b'{"id": "m17", "text": "hi", "tas_action": "deleted"}', "bad_field"),
    (
        '{"id": "m18", "text": "Привет, как дела?", "is_spam": null, "meta": {"language": "ru"}}'.encode(),
        None,
    ),
]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def batch_row(url: str, batch_id: int) -> tuple:
    with psycopg.connect(url) as c:
        return c.execute(
            "select status, read_count, loaded_count, duplicate_count, quarantined_count, error, source_sha256 "
            "from raw.ingest_batches where batch_id = %s",
            (batch_id,),
        ).fetchone()


def test_mixed_file_exact_counts_and_quarantine(fresh_db: str, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "mixed.jsonl", [line for line, _ in MIXED])
    report = ingest_file(fresh_db, path, max_text_bytes=200)
    assert report.as_dict() == {
        "batch_id": report.batch_id,
        "read": 18,
        "loaded": 4,
        "duplicate": 1,
        "quarantined": 13,
    }
    status, read, loaded, duplicate, quarantined, error, sha = batch_row(fresh_db, report.batch_id)
    assert (status, read, loaded, duplicate, quarantined, error) == ("done", 18, 4, 1, 13, None)
    assert len(sha) == 64

    with psycopg.connect(fresh_db) as c:
        quarantine = c.execute(
            "select line_number, reason_code, reason, raw_line, raw_bytes from raw.ingest_quarantine "
            "where batch_id = %s order by line_number",
            (report.batch_id,),
        ).fetchall()
        messages = {
            r[0]: r[1:]
            for r in c.execute(
                "select external_id, source_line, text, is_spam, event_at::text, meta, batch_id from raw.messages"
            )
        }
    expected_bad = [(n, code) for n, (_, code) in enumerate(MIXED, 1) if code]
    assert [(q[0], q[1]) for q in quarantine] == expected_bad
    for line_number, _, reason, _, raw_bytes in quarantine:
        assert reason
        assert bytes(raw_bytes) == MIXED[line_number - 1][0]
    shown = {q[0]: q[3] for q in quarantine}
    assert shown[7] == '{"id": "m7", "text": "a\\x00b"}'  # NUL shown escaped
    assert shown[9] == '{"id": "m9", "text": "caf\\xe9"}'  # invalid UTF-8 shown escaped
    assert shown[14] == ""  # the blank line

    assert sorted(messages) == sorted(["m1", "m15", "m18", messages_hash_id(messages)])
    assert messages["m1"][:3] == (1, "Win a prize at rwd.li", True)  # the first occurrence won
    assert messages["m15"][3] == "2026-01-02 03:00:00+00"
    assert messages["m15"][4] == {"src": "x"}
    assert messages["m18"][2] is None and messages["m18"][4] == {"language": "ru"}
    assert {m[5] for m in messages.values()} == {report.batch_id}


def messages_hash_id(messages: dict) -> str:
    (hashed,) = [k for k in messages if k.startswith("h:")]
    return hashed


def test_reingest_loads_nothing(fresh_db: str, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "mixed.jsonl", [line for line, _ in MIXED])
    first = ingest_file(fresh_db, path, max_text_bytes=200)
    second = ingest_file(fresh_db, path, max_text_bytes=200)
    assert second.batch_id != first.batch_id
    assert (second.read, second.loaded, second.duplicate, second.quarantined) == (18, 0, 5, 13)
    with psycopg.connect(fresh_db) as c:
        assert c.execute("select count(*) from raw.messages").fetchone()[0] == 4
        assert c.execute("select count(*) from raw.ingest_quarantine").fetchone()[0] == 26
        # no staging table is left behind
        assert c.execute("select count(*) from pg_tables where schemaname = 'raw'").fetchone()[0] == 3


def test_gzip_jsonl_fast_path_and_connection_argument(fresh_db: str, tmp_path: Path) -> None:
    lines = [
        b'{"id": "g%d", "text": "message %d", "is_spam": %s}' % (i, i, b"true" if i % 3 else b"false")
        for i in range(50)
    ]
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    with psycopg.connect(fresh_db) as conn:
        report = ingest_file(conn, path)
        assert report.as_dict()["loaded"] == 50 and report.read == 50
        assert conn.execute(
            "select count(*), count(*) filter (where is_spam) from raw.messages"
        ).fetchone() == (50, 33)
        with psycopg.connect(fresh_db) as other:  # committed, not left in the caller's transaction
            assert other.execute("select count(*) from raw.messages").fetchone()[0] == 50
        conn.execute("select 1")  # an open transaction is refused, not committed behind the caller's back
        with pytest.raises(ValueError, match="open transaction"):
            ingest_file(conn, path)


def test_csv_with_column_map(fresh_db: str, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"msg,body,verdict,when,country\n"
        b'a1,"Cheap meds, order now",spam,2026-01-05T10:00:00Z,US\n'
        b'a2,"two\nlines",ham,,GB\n'
        b"a3,short,row\n"
        b"a4,hello,perhaps,,FR\n"
    )
    report = ingest_file(
        fresh_db, path, column_map={"id": "msg", "text": "body", "is_spam": "verdict", "timestamp": "when"}
    )
    assert (report.read, report.loaded, report.duplicate, report.quarantined) == (4, 2, 0, 2)
    with psycopg.connect(fresh_db) as c:
        rows = c.execute(
            "select external_id, text, is_spam, event_at is null, meta, source_line from raw.messages order by 1"
        ).fetchall()
        codes = c.execute("select line_number, reason_code from raw.ingest_quarantine order by 1").fetchall()
    assert rows == [
        ("a1", "Cheap meds, order now", True, False, {"country": "US"}, 1),
        ("a2", "two\nlines", False, True, {"country": "GB"}, 2),
    ]
    assert codes == [(3, "wrong_column_count"), (4, "unknown_label")]


def test_csv_without_a_text_column_is_a_clear_error(fresh_db: str, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,body\n1,hello\n")
    with pytest.raises(ValueError, match="no text column"):
        ingest_file(fresh_db, path)


def test_empty_file_is_an_empty_batch(fresh_db: str, tmp_path: Path) -> None:
    for name in ("empty.jsonl", "empty.csv"):
        path = tmp_path / name
        path.write_bytes(b"")
        report = ingest_file(fresh_db, path)
        assert (report.read, report.loaded, report.duplicate, report.quarantined) == (0, 0, 0, 0)
        assert batch_row(fresh_db, report.batch_id)[:5] == ("done", 0, 0, 0, 0)


def test_missing_file_raises_with_the_path(fresh_db: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        ingest_file(fresh_db, missing)


@pytest.mark.parametrize("path_taken", ["direct", "staging"])
def test_a_failing_load_leaves_only_a_failed_batch_row(
    fresh_db: str, tmp_path: Path, path_taken: str
) -> None:
    with psycopg.connect(fresh_db) as c:
        ensure_schema(c)
        # A constraint that a line in the middle of the file violates: the load fails mid-way.
        c.execute("alter table raw.messages add constraint no_boom check (text <> 'BOOM')")
        c.commit()
    before = 0
    if path_taken == "staging":  # an id that already exists sends the batch through staging
        seed = write_lines(tmp_path / "seed.jsonl", [b'{"id": "k0", "text": "already here"}'])
        before = ingest_file(fresh_db, seed).loaded
    lines = [b'{"id": "k%d", "text": "row %d"}' % (i, i) for i in range(3000)]
    lines[1500] = b'{"id": "boom", "text": "BOOM"}'
    lines[10] = b"not json"  # a quarantined line before the failure
    path = write_lines(tmp_path / "boom.jsonl", lines)
    with pytest.raises(psycopg.errors.CheckViolation):
        ingest_file(fresh_db, path)
    with psycopg.connect(fresh_db) as c:
        status, error, batch_id = c.execute(
            "select status, error, batch_id from raw.ingest_batches order by batch_id desc limit 1"
        ).fetchone()
        assert status == "failed" and "no_boom" in error
        assert c.execute("select count(*) from raw.messages").fetchone()[0] == before
        assert (
            c.execute("select count(*) from raw.messages where batch_id = %s", (batch_id,)).fetchone()[0] == 0
        )
        assert (
            c.execute(
                "select count(*) from raw.ingest_quarantine where batch_id = %s", (batch_id,)
            ).fetchone()[0]
            == 0
        )
        assert c.execute("select count(*) from pg_tables where schemaname = 'raw'").fetchone()[0] == 3


def test_abandoned_running_batch_is_marked_failed(fresh_db: str, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db) as c:
        ensure_schema(c)
        c.execute(
            "insert into raw.ingest_batches (source_path, source_format, started_at) "
            "values ('/killed.jsonl', 'jsonl', now() - interval '1 hour')"
        )
        c.commit()
    ingest_file(fresh_db, write_lines(tmp_path / "a.jsonl", [b'{"id": "a", "text": "hi"}']))
    with psycopg.connect(fresh_db) as c:
        statuses = c.execute(
            "select source_path, status from raw.ingest_batches order by batch_id"
        ).fetchall()
    assert statuses[0] == ("/killed.jsonl", "failed")
    assert statuses[1][1] == "done"


def test_shared_dataset_loads_completely(fresh_db: str, shared_dataset: Path) -> None:
    report = ingest_file(fresh_db, shared_dataset)
    assert (report.read, report.loaded, report.duplicate, report.quarantined) == (5574, 5574, 0, 0)


def test_a_killed_ingest_is_recognised_at_once_and_a_live_one_is_left_alone(
    fresh_db: str, tmp_path: Path
) -> None:
    """A batch's loader holds its lock; a batch whose loader died (just now) is failed at once."""
    from python_steps.ingest.load import BATCH_LOCK_NS, mark_abandoned_batches

    with psycopg.connect(fresh_db) as c:
        ensure_schema(c)
        dead, alive = (
            c.execute(
                "insert into raw.ingest_batches (source_path, source_format) values (%s, 'jsonl') returning batch_id",
                (name,),
            ).fetchone()[0]
            for name in ("/killed-just-now.jsonl", "/still-loading.jsonl")
        )
        c.commit()
    with psycopg.connect(fresh_db, autocommit=True) as loader:  # the live loader's session
        loader.execute("select pg_advisory_lock(%s, %s::int)", (BATCH_LOCK_NS, alive))
        with psycopg.connect(fresh_db) as c:
            assert mark_abandoned_batches(c) == 1
            statuses = dict(c.execute("select batch_id, status from raw.ingest_batches").fetchall())
        assert statuses == {dead: "failed", alive: "running"}
    # the loader's session is gone: the next ingest fails its batch without waiting
    ingest_file(fresh_db, write_lines(tmp_path / "b.jsonl", [b'{"id": "b", "text": "hi"}']))
    with psycopg.connect(fresh_db) as c:
        assert (
            c.execute("select status from raw.ingest_batches where batch_id = %s", (alive,)).fetchone()[0]
            == "failed"
        )
        assert (
            c.execute("select count(*) from raw.ingest_batches where status = 'running'").fetchone()[0] == 0
        )


def test_an_unclosed_csv_quote_never_absorbs_the_next_records(fresh_db: str, tmp_path: Path) -> None:
    broken = write_lines(
        tmp_path / "broken.csv",
        [b"id,text,is_spam", b'1,"win a prize,spam', b"2,see you soon,ham", b"3,bye,ham"],
    )
    report = ingest_file(fresh_db, broken)
    assert (report.read, report.loaded, report.quarantined) == (1, 0, 1)
    with psycopg.connect(fresh_db) as c:
        code, reason = c.execute(
            "select reason_code, reason from raw.ingest_quarantine where batch_id = %s", (report.batch_id,)
        ).fetchone()
    assert code == "unclosed_quote" and "physical lines 1-3" in reason
    # a quoted text that really spans lines is one record, loaded whole
    fine = write_lines(
        tmp_path / "fine.csv",
        [b"id,text,is_spam", b'10,"line one', b'line two, and more",ham', b"11,ok,spam"],
    )
    report = ingest_file(fresh_db, fine)
    assert (report.read, report.loaded, report.quarantined) == (2, 2, 0)


@pytest.mark.parametrize(
    "lines",
    [
        # the runaway quote is closed by the next record's own opening quote
        [b"id,text,is_spam", b'1,"win a prize,spam', b'2,"see you soon",ham', b"3,bye,ham"],
        # two unclosed quotes in a row: the second one closes the first
        [b"id,text,is_spam", b'1,"win a prize,spam', b'2,"see you soon,ham', b"3,bye,ham"],
    ],
)
def test_a_runaway_quote_closed_by_the_next_record_is_quarantined(
    fresh_db: str, tmp_path: Path, lines: list[bytes]
) -> None:
    report = ingest_file(fresh_db, write_lines(tmp_path / "runaway.csv", lines))
    with psycopg.connect(fresh_db) as c:
        texts = [r[0] for r in c.execute("select text from raw.messages order by external_id")]
        codes = [r[0] for r in c.execute("select reason_code from raw.ingest_quarantine")]
    assert texts == ["bye"] and codes == ["unclosed_quote"], (texts, codes)
    assert (report.loaded, report.quarantined) == (1, 1)
