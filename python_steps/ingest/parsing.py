"""Reading message files: JSONL / CSV lines (optionally gzip) into rows of the message contract.

Every line becomes a row or a :class:`Reject` with a reason code (:data:`REASON_CODES`); nothing
here touches the database (:mod:`python_steps.ingest.load` does).

Input lines:

* JSONL: one JSON object per line. CSV: a header line, then one record per line (quoted fields may
  span lines; ``source_line`` is then the record number, 1-based, header excluded).
* Field names and aliases (first listed wins when a row has several): ``external_id`` / ``id`` /
  ``message_id``; ``event_at`` / ``event_time`` / ``timestamp``; ``text``; ``is_spam`` / ``label`` /
  ``spam``; ``meta`` (an object, or a JSON string of one in CSV); ``tas_action``;
  ``user_complaint``; ``unbanned``. ``column_map={"text": "body", ...}`` names the source column
  of a field explicitly (its default aliases then become ordinary unknown fields). Unknown fields
  go into ``meta`` (a key already in ``meta`` wins).
* Labels: true/false, 1/0, "spam"/"ham", "yes"/"no", "true"/"false" (any case); null, "" and
  "null" mean unlabelled. Timestamps: ISO 8601 (naive = UTC) or epoch seconds / milliseconds
  (absolute value >= 1e11 reads as milliseconds), as numbers or digit strings.
* ``external_id`` when absent or empty: ``"h:" + sha256(text + "\\x1f" + event_iso)`` in hex, where
  ``event_iso`` is the UTC ``datetime.isoformat()`` of the timestamp (``2026-01-01T00:00:00+00:00``)
  or ``""``. Re-ingesting a file loads nothing; within a file the first occurrence of an id wins.
* **Blank lines** (empty or whitespace only) are records too: read and quarantined as
  ``blank_line``, so line numbers and counts always match the file.

Quarantine reason codes: see :data:`REASON_CODES`.

"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

REASON_CODES: dict[str, str] = {
    "blank_line": "an empty or whitespace-only line",
    "malformed_json": "the line is not valid JSON",
    "not_an_object": "the JSON value is not an object",
    "malformed_csv": "the CSV record cannot be parsed",
    "wrong_column_count": "the CSV record has a different number of fields than the header",
    "unclosed_quote": "an unclosed quote joined later lines (each a record of its own) into one CSV record",
    "missing_text": "no text field, or it is null or not a string",
    "empty_text": "the text is empty or whitespace only",
    "nul_byte": "the line holds a NUL byte (raw, or \\u0000 in a JSON string)",
    "invalid_utf8": "the line is not valid UTF-8",
    "unknown_label": "is_spam is not one of the accepted label values",
    "bad_timestamp": "the timestamp is neither ISO 8601 nor epoch seconds/milliseconds",
    "text_too_large": "the text (or the whole line) is over the size limit",
    "bad_meta": "meta is not a JSON object",
    "bad_field": "id, tas_action, user_complaint or unbanned has an unusable value",
}


# Field name -> canonical field; the order within a field is its precedence.
DEFAULT_ALIASES: dict[str, str] = {
    "external_id": "external_id",
    "id": "external_id",
    "message_id": "external_id",
    "event_at": "event_at",
    "event_time": "event_at",
    "timestamp": "event_at",
    "text": "text",
    "is_spam": "is_spam",
    "label": "is_spam",
    "spam": "is_spam",
    "meta": "meta",
    "tas_action": "tas_action",
    "user_complaint": "user_complaint",
    "unbanned": "unbanned",
}
FIELDS = ("external_id", "event_at", "text", "is_spam", "meta", "tas_action", "user_complaint", "unbanned")

_LABELS: dict[Any, bool | None] = {
    True: True,
    False: False,
    None: None,
    "": None,
    "null": None,
    "none": None,
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "spam": True,
    "ham": False,
    "yes": True,
    "no": False,
}
_FLAGS: dict[Any, bool | None] = {k: v for k, v in _LABELS.items() if k not in ("spam", "ham")} | {
    "t": True,
    "f": False,
    "y": True,
    "n": False,
}
_ACTIONS = {
    None: None,
    "": None,
    "null": None,
    "blocked": "blocked",
    "allowed": "allowed",
    "block": "blocked",
    "allow": "allowed",
}


class Reject(Exception):
    """A line that cannot become a message: it goes to the quarantine with ``code`` and ``reason``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class IngestReport:
    batch_id: int
    read: int
    loaded: int
    duplicate: int
    quarantined: int
    source_path: str

    def as_dict(self) -> dict[str, int]:
        return {
            "batch_id": self.batch_id,
            "read": self.read,
            "loaded": self.loaded,
            "duplicate": self.duplicate,
            "quarantined": self.quarantined,
        }


# ---------------------------------------------------------------------------------------------
# Pure parsing (no database)


def parse_label(value: object) -> bool | None:
    try:
        return _LABELS[value]
    except (KeyError, TypeError):
        pass
    if isinstance(value, str) and value.strip().lower() in _LABELS:
        return _LABELS[value.strip().lower()]
    raise Reject("unknown_label", f"is_spam value {_short(value)} is not a known label")


def parse_flag(value: object, name: str) -> bool | None:
    try:
        return _FLAGS[value]
    except (KeyError, TypeError):
        pass
    if isinstance(value, str) and value.strip().lower() in _FLAGS:
        return _FLAGS[value.strip().lower()]
    raise Reject("bad_field", f"{name} value {_short(value)} is not a boolean")


def parse_action(value: object) -> str | None:
    key = value.strip().lower() if isinstance(value, str) else value
    try:
        return _ACTIONS[key]
    except (KeyError, TypeError):
        raise Reject("bad_field", f"tas_action value {_short(value)} is not 'blocked' or 'allowed'") from None


def parse_timestamp(value: object) -> str | None:
    """ISO 8601 or epoch seconds/milliseconds -> UTC ISO text (``datetime.isoformat``); None if absent."""
    if value is None or value == "":
        return None
    try:
        if type(value) is str:
            if value.isdigit():
                dt = _from_epoch(int(value))
            else:
                try:
                    dt = datetime.fromisoformat(value)
                    if dt.tzinfo is UTC and len(value) == 20 and value[10] == "T" and value[19] == "Z":
                        return value[:19] + "+00:00"  # the common case, as isoformat() would write it
                except ValueError:  # surrounding blanks, signed or fractional epochs
                    text = value.strip()
                    try:
                        dt = _from_epoch(float(text))
                    except ValueError:
                        dt = datetime.fromisoformat(text)
        elif type(value) in (int, float):
            dt = _from_epoch(value)  # type: ignore[arg-type]
        else:
            raise ValueError
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        elif dt.tzinfo is not UTC:
            dt = dt.astimezone(UTC)
        return dt.isoformat()
    except (ValueError, OverflowError, OSError):
        raise Reject("bad_timestamp", f"timestamp {_short(value)} is not ISO 8601 or epoch seconds") from None


def _from_epoch(x: float) -> datetime:
    if x != x or abs(x) == float("inf"):
        raise ValueError
    return datetime.fromtimestamp(x / 1000.0 if abs(x) >= 1e11 else x, UTC)


def content_hash_id(text: str, event_iso: str | None) -> str:
    return "h:" + hashlib.sha256(f"{text}\x1f{event_iso or ''}".encode()).hexdigest()


def _short(value: object, limit: int = 60) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


class FieldMapper:
    """Resolves a record's field names to the message fields (aliases, ``column_map``, meta)."""

    MAX_PLANS = 256

    def __init__(self, column_map: dict[str, str] | None = None) -> None:
        # source name -> (canonical field, precedence); a column_map entry beats every alias.
        self._names: dict[str, tuple[str, int]] = {
            k: (v, i) for i, (k, v) in enumerate(DEFAULT_ALIASES.items())
        }
        for field, source in (column_map or {}).items():
            canon = DEFAULT_ALIASES.get(field)
            if canon is None:
                raise ValueError(f"column_map: unknown field {field!r} (fields: {', '.join(FIELDS)})")
            self._names = {k: v for k, v in self._names.items() if v[0] != canon}
            self._names[source] = (canon, -1)
        self._plans: dict[tuple[str, ...], tuple[tuple[str | None, ...], tuple[str, ...]]] = {}

    def is_field(self, name: str, field: str) -> bool:
        return self._names.get(name, ("", 0))[0] == field

    def plan(self, keys: tuple[str, ...]) -> tuple[tuple[str | None, ...], tuple[str, ...]]:
        """For ``keys`` (a record's field names, in order): the source key of each of FIELDS, and
        the keys that go to meta. Files repeat a few key layouts, so plans are cached."""
        cached = self._plans.get(keys)
        if cached is not None:
            return cached
        best: dict[str, tuple[int, str]] = {}
        for key in keys:
            hit = self._names.get(key)
            if hit and (hit[0] not in best or hit[1] < best[hit[0]][0]):
                best[hit[0]] = (hit[1], key)
        chosen = {key for _, key in best.values()}
        plan = (
            tuple(best[f][1] if f in best else None for f in FIELDS),
            tuple(k for k in keys if k not in chosen),
        )
        if len(self._plans) < self.MAX_PLANS:
            self._plans[keys] = plan
        return plan


DEFAULT_MAPPER = FieldMapper()


def build_row(
    fields: dict[str, Any], line_no: int, *, mapper: FieldMapper, max_text_bytes: int
) -> tuple[Any, ...]:
    """One parsed record (JSON object or CSV dict) -> a row for COPY, or raise :class:`Reject`.

    The row is ``(source_line, external_id, event_at_iso, text, is_spam, meta_json, tas_action,
    user_complaint, unbanned)``.
    """
    sources, extra_keys = mapper.plan(tuple(fields))
    k_id, k_time, k_text, k_label, k_meta, k_action, k_complaint, k_unbanned = sources
    get = fields.get  # a None key is never present: get(None) is None

    text = get(k_text)  # type: ignore[arg-type]
    if type(text) is not str:
        raise Reject("missing_text", "no text field" if text is None else f"text is a {type(text).__name__}")
    if len(text) * 4 > max_text_bytes and len(text.encode("utf-8", "surrogatepass")) > max_text_bytes:
        raise Reject("text_too_large", f"text is over the {max_text_bytes}-byte limit")
    if not text or text.isspace():
        raise Reject("empty_text", "text is empty or whitespace only")

    event_iso = parse_timestamp(get(k_time))  # type: ignore[arg-type]
    value = get(k_label)  # type: ignore[arg-type]
    try:
        is_spam = _LABELS[value]
    except (KeyError, TypeError):
        is_spam = parse_label(value)

    meta = get(k_meta)  # type: ignore[arg-type]
    if type(meta) is str:
        try:
            meta = orjson.loads(meta) if meta.strip() else None
        except orjson.JSONDecodeError:
            raise Reject("bad_meta", "meta is not valid JSON") from None
    if meta is None:
        meta = {}
    elif type(meta) is not dict:
        raise Reject("bad_meta", f"meta is a {type(meta).__name__}, not an object")
    if extra_keys:
        meta = {**{k: fields[k] for k in extra_keys}, **meta}
    meta_json = orjson.dumps(meta).decode() if meta else "{}"

    ext = get(k_id)  # type: ignore[arg-type]
    if ext is None or ext == "":
        ext = content_hash_id(text, event_iso)
    elif type(ext) is int:
        ext = str(ext)
    elif type(ext) is not str:
        raise Reject("bad_field", f"id {_short(ext)} is not a string or an integer")

    if "\x00" in text or "\x00" in ext or ("\\u0000" in meta_json and _has_nul(meta)):
        raise Reject("nul_byte", "a \\u0000 escape in a string")

    value = get(k_action)  # type: ignore[arg-type]
    try:
        action = _ACTIONS[value]
    except (KeyError, TypeError):
        action = parse_action(value)
    value = get(k_complaint)  # type: ignore[arg-type]
    try:
        complaint = _FLAGS[value]
    except (KeyError, TypeError):
        complaint = parse_flag(value, "user_complaint")
    value = get(k_unbanned)  # type: ignore[arg-type]
    try:
        unbanned = _FLAGS[value]
    except (KeyError, TypeError):
        unbanned = parse_flag(value, "unbanned")
    return (line_no, ext, event_iso, text, is_spam, meta_json, action, complaint, unbanned)


def _has_nul(value: object) -> bool:
    """Whether a NUL character hides in a JSON value (jsonb rejects it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def parse_json_line(
    raw: bytes, line_no: int, *, mapper: FieldMapper = DEFAULT_MAPPER, max_text_bytes: int = 65536
) -> tuple[Any, ...]:
    """One JSONL line (bytes, newline optional) -> a COPY row, or raise :class:`Reject`."""
    if b"\x00" in raw:
        raise Reject("nul_byte", "the line holds a NUL byte")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise Reject("invalid_utf8", f"invalid UTF-8 at byte {uexc.start}") from None
        if not s.strip():
            raise Reject("blank_line", "blank line") from None
        raise Reject("malformed_json", str(exc)[:200]) from None
    if type(obj) is not dict:
        raise Reject("not_an_object", f"a JSON {type(obj).__name__}, not an object")
    return build_row(obj, line_no, mapper=mapper, max_text_bytes=max_text_bytes)


def quarantine_row(batch_id: int, line_no: int, raw: bytes, reject: Reject) -> tuple[Any, ...]:
    """A row for ``raw.ingest_quarantine`` (raw line without its line ending; escapes for bad bytes)."""
    raw = raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw
    shown = raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    return (batch_id, line_no, reject.code, reject.reason, shown, raw)


# ---------------------------------------------------------------------------------------------
# Reading files


class _CountingReader(io.RawIOBase):
    """Raw file reader that hashes (sha256) and counts the bytes it hands out."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            view = memoryview(buffer)[:n]
            self.sha256.update(view)
            self.position += n
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown format {fmt!r} (expected 'jsonl' or 'csv')")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext == ".csv":
        return "csv"
    raise ValueError(f"cannot tell the format of {path} from its name; pass fmt='jsonl' or fmt='csv'")


@dataclass
class _Source:
    counter: _CountingReader
    stream: BinaryIO
    size: int

    def close(self) -> None:
        self.stream.close()
        self.counter.close()


def _open_source(path: Path) -> _Source:
    fh = open(path, "rb")  # noqa: SIM115 -- owned by the returned _Source
    counter = _CountingReader(fh)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    stream: BinaryIO = buffered
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
    return _Source(counter, stream, os.fstat(fh.fileno()).st_size)


def _line_limit(max_text_bytes: int) -> int:
    # A JSON line may escape every character of its text (up to 6x) and carry metadata.
    return max(1 << 20, 8 * max_text_bytes + (64 << 10))


def _read_lines(stream: BinaryIO, limit: int) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line, oversize)``; an oversize line is cut to ``limit`` bytes and the rest skipped."""
    readline = stream.readline
    while True:
        line = readline(limit)
        if not line:
            return
        if len(line) < limit or line.endswith(b"\n"):
            yield line, False
            continue
        _skip_rest_of_line(readline, limit)
        yield line, True


def _skip_rest_of_line(readline: Callable[[int], bytes], limit: int) -> None:
    """Skip the rest of an oversize line in ``limit``-sized pieces: memory stays flat."""
    while True:
        rest = readline(limit)
        if not rest or rest.endswith(b"\n"):
            return


Emit = Callable[[tuple[Any, ...] | None, int, bytes, Reject | None], None]


def _parse_jsonl(source: _Source, emit: Emit, mapper: FieldMapper, max_text_bytes: int) -> int:
    """Parse every line, hand each to ``emit``; return the number of lines."""
    limit = _line_limit(max_text_bytes)
    readline = source.stream.readline
    line_no = 0
    while line := readline(limit):
        line_no += 1
        try:
            if len(line) == limit and not line.endswith(b"\n"):
                _skip_rest_of_line(readline, limit)
                raise Reject(
                    "text_too_large", f"the line is over {limit} bytes (stored cut to {limit} bytes)"
                )
            row = parse_json_line(line, line_no, mapper=mapper, max_text_bytes=max_text_bytes)
        except Reject as rej:
            emit(None, line_no, line, rej)
            continue
        emit(row, line_no, line, None)
    return line_no


class _CsvFeed:
    """Decoded physical lines for ``csv.reader``, remembering the raw bytes of the current record."""

    def __init__(self, lines: Iterator[tuple[bytes, bool]], limit: int) -> None:
        self._lines = lines
        self._limit = limit
        self.raw: list[bytes] = []
        self.size = 0
        self.problem: Reject | None = None
        self.lines_read = 0  # physical lines handed to the csv reader so far
        self.first_line = 1  # physical line number where the current record starts

    def __iter__(self) -> _CsvFeed:
        return self

    def start_record(self) -> None:
        self.raw, self.size, self.problem = [], 0, None
        self.first_line = self.lines_read + 1

    def swallowed_lines(self, fields: int) -> bool:
        """Whether this multi-line record swallowed lines that are records of their own.

        A quoted field may span lines; inside it a quote is doubled, so its inner lines hold an even
        number of quote characters, and its last line an odd one (the closing quote, plus any whole
        quoted fields after it). An unclosed quote instead runs on over whole records: a later line
        with an even number of quotes that parses, on its own, into exactly the header's number of
        fields is such a record -- also the last line, whose own opening quote closed the runaway
        field. (A legitimate multi-line text whose inner line looks exactly like a record is
        quarantined too: visible with its line range, never merged silently.) And a runaway quote
        closed by a quote that cannot close a field (one followed by neither a delimiter nor the
        end of the line: the opening quote of the next record's field) is one too: the record does
        not parse as strict CSV."""
        try:
            text = b"".join(self.raw).decode("utf-8", "replace")
            for _ in csv.reader(text.splitlines(keepends=True), strict=True):
                pass
        except csv.Error:
            return True
        for raw in self.raw[1:]:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.count('"') % 2 == 0 and line.strip() and len(next(csv.reader([line]), [])) == fields:
                return True
        return False

    def __next__(self) -> str:
        line, oversize = next(self._lines)
        self.lines_read += 1
        self.raw.append(line)
        self.size += len(line)
        if self.problem is None:
            if oversize or self.size > self._limit:
                self.problem = Reject("text_too_large", f"the record is over {self._limit} bytes")
            elif b"\x00" in line:
                self.problem = Reject("nul_byte", "the record holds a NUL byte")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.problem is None:
                self.problem = Reject("invalid_utf8", f"invalid UTF-8 at byte {exc.start} of a line")
            text = line.decode("utf-8", "replace")
        if self.problem is not None and self.problem.code == "text_too_large":
            raise _RecordTooLarge
        return text.replace("\x00", "")


class _RecordTooLarge(Exception):
    pass


def _csv_header(source: _Source, limit: int) -> tuple[list[str], Iterator[tuple[bytes, bool]]]:
    lines = _read_lines(source.stream, limit)
    for line, _ in lines:
        header = next(csv.reader([line.decode("utf-8-sig", "replace").rstrip("\r\n")]), [])
        return [h.strip() for h in header], lines
    return [], lines


def _parse_csv(
    header: list[str],
    lines: Iterator[tuple[bytes, bool]],
    emit: Emit,
    mapper: FieldMapper,
    max_text_bytes: int,
) -> int:
    limit = _line_limit(max_text_bytes)
    csv.field_size_limit(max(csv.field_size_limit(), limit))
    feed = _CsvFeed(lines, limit)
    reader = csv.reader(feed)
    record_no = 0
    while True:
        feed.start_record()
        try:
            record = next(reader)
            rej = feed.problem
        except StopIteration:
            return record_no
        except _RecordTooLarge:  # the next physical line starts a new record
            record_no += 1
            assert feed.problem is not None
            emit(None, record_no, b"".join(feed.raw)[:limit], feed.problem)
            continue
        except csv.Error as exc:
            record = None
            rej = Reject("malformed_csv", str(exc)[:200])
        record_no += 1
        raw = b"".join(feed.raw)
        try:
            if rej is not None:
                raise rej
            if len(feed.raw) > 1 and feed.swallowed_lines(len(header)):
                last = feed.first_line + len(feed.raw) - 1
                raise Reject(
                    "unclosed_quote",
                    f"an unclosed quote joined physical lines {feed.first_line}-{last} (after the header)"
                    " into one record; quarantined whole, not merged",
                )
            assert record is not None
            if not record or (len(record) == 1 and not record[0].strip()):
                raise Reject("blank_line", "blank line")
            if len(record) != len(header):
                raise Reject("wrong_column_count", f"{len(record)} fields, the header has {len(header)}")
            row = build_row(
                dict(zip(header, record, strict=True)),
                record_no,
                mapper=mapper,
                max_text_bytes=max_text_bytes,
            )
        except Reject as r:
            emit(None, record_no, raw, r)
            continue
        emit(row, record_no, raw, None)


# ---------------------------------------------------------------------------------------------
# Loading
