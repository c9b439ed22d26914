"""Ingestion parsing and accounting as pure functions (no database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from python_steps.ingest.parsing import (
    FieldMapper,
    Reject,
    _csv_header,
    _open_source,
    _parse_csv,
    _parse_jsonl,
    content_hash_id,
    detect_format,
    parse_json_line,
    parse_label,
    parse_timestamp,
    quarantine_row,
)


def reason(raw: bytes, **kwargs: Any) -> str:
    with pytest.raises(Reject) as exc:
        parse_json_line(raw, 1, **kwargs)
    return exc.value.code


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (None, None), ("", None), ("null", None), (1, True), (0, False),
     ("spam", True), ("HAM", False), (" Yes ", True), ("no", False), ("true", True), ("0", False)],
)  # fmt: skip
def test_labels(value: object, expected: bool | None) -> None:
    assert parse_label(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, [1], {"a": 1}, 0.5])
def test_unknown_labels(value: object) -> None:
    with pytest.raises(Reject) as exc:
        parse_label(value)
    assert exc.value.code == "unknown_label"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02T03:04:05", "2026-01-02T03:04:05+00:00"),  # naive = UTC
        ("2026-01-02T05:04:05+02:00", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02 03:04:05.250", "2026-01-02T03:04:05.250000+00:00"),
        (" 2026-01-02T03:04:05Z ", "2026-01-02T03:04:05+00:00"),
        (1767323045, "2026-01-02T03:04:05+00:00"),  # epoch seconds
        (1767323045000, "2026-01-02T03:04:05+00:00"),  # epoch milliseconds
        ("1767323045", "2026-01-02T03:04:05+00:00"),
        (1767323045.5, "2026-01-02T03:04:05.500000+00:00"),
        (None, None),
        ("", None),
    ],
)
def test_timestamps(value: object, expected: str | None) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-01-02T25:00", True, [2026], 1e300, "nan"])
def test_bad_timestamps(value: object) -> None:
    with pytest.raises(Reject) as exc:
        parse_timestamp(value)
    assert exc.value.code == "bad_timestamp"


def test_content_hash_id_is_stable_and_depends_on_time() -> None:
    a = content_hash_id("hello", "2026-01-02T03:04:05+00:00")
    assert a == content_hash_id("hello", "2026-01-02T03:04:05+00:00")
    assert a.startswith("h:") and len(a) == 2 + 64
    assert a != content_hash_id("hello", None)
    # a missing id hashes text + \x1f + normalized timestamp, whatever form the input used
    row = parse_json_line(b'{"text": "hello", "timestamp": 1767323045}', 1)
    assert row[1] == a


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"id": "x", "text": ', "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b'{"id": "x"}', "missing_text"),
        (b'{"id": "x", "text": null}', "missing_text"),
        (b'{"id": "x", "text": 42}', "missing_text"),
        (b'{"id": "x", "text": "  \\t "}', "empty_text"),
        (b'{"id": "x", "text": ""}', "empty_text"),
        (b'{"id": "x", "text": "a\x00b"}', "nul_byte"),
        (b'{"id": "x", "text": "a\\u0000b"}', "nul_byte"),
        (b'{"id": "x", "text": "ok", "meta": {"k": "\\u0000"}}', "nul_byte"),
        (b'{"id": "x", "text": "caf\xe9"}', "invalid_utf8"),
        (b'{"id": "x", "text": "hi", "is_spam": "maybe"}', "unknown_label"),
        (b'{"id": "x", "text": "hi", "timestamp": "yesterday"}', "bad_timestamp"),
        (b'{"id": "x", "text": "hi", "meta": [1]}', "bad_meta"),
        (b'{"id": "x", "text": "hi", "meta": "{not json"}', "bad_meta"),
        (b'{"id": "x", "text": "hi", "tas_action": "deleted"}', "bad_field"),
        (b'{"id": "x", "text": "hi", "unbanned": "perhaps"}', "bad_field"),
        (b'{"id": 1.5, "text": "hi"}', "bad_field"),
        (b"", "blank_line"),
        (b"   \r\n", "blank_line"),
        (b'{"text": "x", "v": NaN}', "malformed_json"),
    ],
)
def test_reject_reasons(raw: bytes, code: str) -> None:
    assert reason(raw) == code


def test_text_size_limit_counts_utf8_bytes() -> None:
    ok = '{"id": "x", "text": "%s"}' % ("я" * 50)  # 100 bytes
    assert parse_json_line(ok.encode(), 1, max_text_bytes=100)[3] == "я" * 50
    assert reason(('{"id": "x", "text": "%s"}' % ("я" * 51)).encode(), max_text_bytes=100) == "text_too_large"


def test_a_good_line_becomes_a_copy_row() -> None:
    raw = (
        b'{"id": "uci:1", "text": "Free entry", "is_spam": "spam", "timestamp": "2026-01-02T03:04:05Z",'
        b' "meta": {"lang": "en"}, "tas_action": "Blocked", "user_complaint": 1, "unbanned": "no", "src": "x"}\n'
    )
    assert parse_json_line(raw, 7) == (
        7, "uci:1", "2026-01-02T03:04:05+00:00", "Free entry", True,
        '{"src":"x","lang":"en"}', "blocked", True, False,
    )  # fmt: skip


def test_aliases_precedence_and_unknown_fields_go_to_meta() -> None:
    row = parse_json_line(
        b'{"message_id": "m", "id": "i", "event_time": 0, "label": "ham", "text": "t", "meta": {"k": 1}, "k": 2}',
        3,
    )
    _, ext, event, _, is_spam, meta, *_ = row
    assert ext == "i"  # "id" outranks "message_id"; the loser is kept in meta
    assert event == "1970-01-01T00:00:00+00:00"
    assert is_spam is False
    assert meta == '{"message_id":"m","k":1}'  # meta's own key wins over a top-level field


def test_column_map_names_the_source_field() -> None:
    mapper = FieldMapper({"text": "body", "is_spam": "verdict"})
    row = parse_json_line(
        b'{"id": "a", "body": "hello", "text": "other", "verdict": "spam"}', 1, mapper=mapper
    )
    assert row[3] == "hello" and row[4] is True
    assert row[5] == '{"text":"other"}'
    with pytest.raises(ValueError, match="unknown field"):
        FieldMapper({"nope": "x"})


def test_quarantine_row_keeps_bad_bytes_visible() -> None:
    q = quarantine_row(5, 9, b'{"t": "caf\xe9\x00"}\r\n', Reject("invalid_utf8", "bad"))
    assert q == (5, 9, "invalid_utf8", "bad", '{"t": "caf\\xe9\\x00"}', b'{"t": "caf\xe9\x00"}')


def test_detect_format() -> None:
    assert detect_format(Path("a.jsonl"), None) == "jsonl"
    assert detect_format(Path("a.JSONL.gz"), None) == "jsonl"
    assert detect_format(Path("a.csv.gz"), None) == "csv"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(ValueError):
        detect_format(Path("a.txt"), None)


def _collect(path: Path, fmt: str, **kw: Any) -> list[tuple[int, str | None]]:
    """(line number, reject code or None) for every record of the file."""
    out: list[tuple[int, str | None]] = []
    emit = lambda row, n, raw, rej: out.append((n, rej.code if rej else None))  # noqa: E731
    source = _open_source(path)
    try:
        if fmt == "jsonl":
            _parse_jsonl(source, emit, FieldMapper(), kw.get("max_text_bytes", 65536))
        else:
            header, lines = _csv_header(source, 1 << 20)
            _parse_csv(header, lines, emit, FieldMapper(kw.get("column_map")), 65536)
    finally:
        source.close()
    return out


def test_every_jsonl_line_is_accounted_for(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    big = b'{"id": "big", "text": "' + b"x" * (1 << 21) + b'"}\n'  # over the line limit
    path.write_bytes(
        b'{"id": "a", "text": "one"}\n\n[1]\n' + big + b'{"id": "b", "text": "two"}'
    )  # no final newline
    assert _collect(path, "jsonl") == [
        (1, None),
        (2, "blank_line"),
        (3, "not_an_object"),
        (4, "text_too_large"),
        (5, None),
    ]


def test_csv_records_quoted_newlines_and_column_counts(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(
        b"id,text,is_spam\r\n"
        b'1,"hello, world",spam\r\n'
        b'2,"two\nlines",ham\r\n'
        b"3,too,many,fields\r\n"
        b"\r\n"
        b"4,caf\xe9,ham\r\n"
        b"5,ok,\r\n"
    )
    assert _collect(path, "csv") == [
        (1, None), (2, None), (3, "wrong_column_count"), (4, "blank_line"), (5, "invalid_utf8"), (6, None),
    ]  # fmt: skip
