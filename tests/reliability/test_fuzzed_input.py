"""Hostile input: a fuzzed corpus of JSONL and CSV files goes through a real ``patas ingest``.

Several thousand lines per format, generated from fixed seeds: valid records mixed with truncated
lines, random bytes (NUL, invalid UTF-8, lone carriage returns), byte-order marks at the start and in
the middle, raw newlines inside JSON strings, unclosed and stray CSV quotes, legitimate multi-line
quoted CSV fields, wrong column counts, bad labels and timestamps, duplicates, blank lines, a gzip
copy and a truncated gzip. The promises:

- no crash: one process ingests every file, exit 0, no traceback; the truncated gzip is one line on
  stderr and exit 2, and loads nothing;
- every file is accounted for: ``read = loaded + duplicate + quarantined`` on every batch, and for
  JSONL ``read`` is the file's number of physical lines;
- no record silently absorbs another line: every generated record carries a unique marker, and no
  loaded message holds a marker other than its own, nor two of them.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import psycopg
import pytest
from patas_processes import Patas, record_figure

pytestmark = pytest.mark.integration

LINES = 3000
MARKER = re.compile(r"Q(\d{6})Q")
BOM = "\ufeff"


def _text(rng: random.Random, n: int) -> str:
    words = [
        "win",
        "prize",
        "call",
        "free",
        "lunch",
        "meeting",
        "ok",
        "สล็อต",
        "Привет",
        "🎉",
        "a,b",
        'say "hi"',
    ]
    return f"Q{n:06d}Q " + " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))


def _jsonl(rng: random.Random, prefix: str) -> tuple[bytes, dict[int, str]]:
    """The file's bytes and, per marker, the physical line (1-based) where its record starts."""
    out: list[bytes] = []
    owners: dict[int, int] = {}
    line_no = 1
    for n in range(LINES):
        rec = {
            "id": f"{prefix}{n}",
            "text": _text(rng, n),
            "is_spam": rng.choice([True, False, None, "spam", "ham"]),
        }
        owners[n] = line_no
        line = json.dumps(rec, ensure_ascii=rng.random() < 0.5)
        r = rng.random()
        if r < 0.05:
            line = line[: rng.randint(0, len(line))]  # truncated
        elif r < 0.08:
            line = line.replace(" ", "\n", 1)  # a raw newline: two broken physical lines
        elif r < 0.10:
            rec["is_spam"] = "maybe"
            line = json.dumps(rec)
        elif r < 0.12:
            rec["timestamp"] = "yesterday-ish"
            line = json.dumps(rec)
        elif r < 0.14:
            line = rng.choice(["[]", "1", '"text"', "null", "{", "}"])
        elif r < 0.16:
            line = ""  # blank
        elif r < 0.18:
            line = BOM + line
        elif r < 0.20 and n > 10:
            dup = rng.randint(0, n - 1)
            line = json.dumps({"id": f"{prefix}{dup}", "text": f"Q{n:06d}Q a later text under an earlier id"})
        data = line.encode("utf-8")
        r = rng.random()
        if r < 0.03:
            pos = rng.randint(0, len(data))
            data = data[:pos] + bytes(rng.choice([0, 0xFF, 0xC3, 0x0D, 0x80]) for _ in range(3)) + data[pos:]
        out.append(data + b"\n")
        line_no += 1 + data.count(b"\n")
    return BOM.encode() + b"".join(out), owners


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _csv(rng: random.Random, prefix: str) -> tuple[bytes, dict[int, str]]:
    """The file's bytes and, per marker, the external id of the record that carries it."""
    lines = ["id,text,is_spam"]
    owners: dict[int, str] = {}
    for n in range(LINES):
        ext = f"{prefix}{n}"
        owners[n] = ext
        text = _text(rng, n)
        label = rng.choice(["spam", "ham", "", "1", "0"])
        r = rng.random()
        if r < 0.05:
            lines.append(f'{ext},"{text},{label}')  # unclosed quote
        elif r < 0.10:
            lines.append(f"{ext},{_csv_field(text + chr(10) + 'second line of the same message')},{label}")
        elif r < 0.13:
            lines.append(f"{ext},{_csv_field(text)},{label},extra")  # wrong column count
        elif r < 0.16:
            lines.append(f'{ext},{text} with a "stray" quote,{label}')
        elif r < 0.18:
            lines.append("")
        elif r < 0.20:
            lines.append(BOM + f"{ext},{_csv_field(text)},{label}")
        elif r < 0.22:
            lines.append(f"{ext},{_csv_field(text)},perhaps")
        elif r < 0.25:
            lines.append(f"{ext},{_csv_field(text)}\r,{label}")  # a lone carriage return
        else:
            lines.append(f"{ext},{_csv_field(text)},{label}")
    data = bytearray(("\n".join(lines) + "\n").encode("utf-8"))
    for _ in range(40):  # random bytes anywhere, also inside quoted fields
        pos = rng.randint(len(lines[0]) + 1, len(data))
        data[pos:pos] = bytes([rng.choice([0, 0xFF, 0xC3, 0x80])])
    return BOM.encode() + bytes(data), owners


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("fuzz")
    files: dict[str, Path] = {}
    owners: dict[str, dict[int, object]] = {}
    for seed in (1, 2):
        data, own = _jsonl(random.Random(seed), f"j{seed}-")
        files[f"j{seed}"] = d / f"fuzz_{seed}.jsonl"
        files[f"j{seed}"].write_bytes(data)
        owners[f"j{seed}"] = own
        data, own = _csv(random.Random(100 + seed), f"c{seed}-")
        files[f"c{seed}"] = d / f"fuzz_{seed}.csv"
        files[f"c{seed}"].write_bytes(data)
        owners[f"c{seed}"] = own
    files["gz"] = d / "fuzz_3.jsonl.gz"
    data, _ = _jsonl(random.Random(3), "g-")
    files["gz"].write_bytes(gzip.compress(data))
    truncated = gzip.compress(_jsonl(random.Random(4), "t-")[0])
    files["truncated"] = d / "fuzz_4.jsonl.gz"
    files["truncated"].write_bytes(truncated[: len(truncated) * 2 // 3])
    return {"files": files, "owners": owners}


def test_fuzzed_files_load_without_a_crash_and_account_for_every_line(
    fresh_db: str, corpus: dict, tmp_path: Path
) -> None:
    files: dict[str, Path] = corpus["files"]
    patas = Patas(fresh_db, tmp_path / "home")
    good = [files[k] for k in ("j1", "c1", "j2", "c2", "gz")]
    res = patas("ingest", "--json", *map(str, good))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    reports = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(good), res.stdout

    bad = patas("ingest", str(files["truncated"]))
    assert bad.returncode == 2, bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr

    with psycopg.connect(fresh_db) as conn:
        batches = conn.execute(
            "select source_path, status, read_count, loaded_count, duplicate_count, quarantined_count "
            "from raw.ingest_batches order by batch_id"
        ).fetchall()
        by_path = {Path(p).name: (s, r, lo, du, q) for p, s, r, lo, du, q in batches}
        for name, (status, read, loaded, dup, quarantined) in by_path.items():
            if name == files["truncated"].name:
                assert status == "failed", by_path
                continue
            assert status == "done", (name, status)
            assert read == loaded + dup + quarantined, (name, read, loaded, dup, quarantined)
            assert loaded > LINES // 2 and quarantined > 0, (name, loaded, quarantined)
        for key in ("j1", "j2"):
            physical = files[key].read_bytes().count(b"\n")
            assert by_path[files[key].name][1] == physical, key
        truncated_batch = [b for b in batches if Path(b[0]).name == files["truncated"].name]
        loaded_from_truncated = conn.execute(
            "select count(*) from raw.messages as m join raw.ingest_batches as b using (batch_id) "
            "where b.source_path = %s",
            (truncated_batch[0][0] if truncated_batch else "",),
        ).fetchone()[0]
        assert loaded_from_truncated == 0
        absorbed = []
        for key in ("j1", "j2", "c1", "c2"):
            owner = corpus["owners"][key]
            rows = conn.execute(
                "select m.external_id, m.source_line, m.text from raw.messages as m join raw.ingest_batches as b using (batch_id) "
                "where b.source_path = %s",
                (_source_path(batches, files[key]),),
            ).fetchall()
            assert rows, key
            for ext, line, text in rows:
                markers = [int(m) for m in MARKER.findall(text)]
                # JSONL: the record's marker is the one generated on its line; CSV: under its id
                mine = [
                    m for m in markers if owner.get(m) == (line if key.startswith("j") else ext.lstrip(BOM))
                ]
                if len(markers) != 1 or not mine:
                    absorbed.append((key, ext, line, text[:120]))
        assert not absorbed, absorbed[:5]
        quarantine_reasons = dict(
            conn.execute("select reason_code, count(*) from raw.ingest_quarantine group by 1").fetchall()
        )
    for code in ("malformed_json", "blank_line", "unknown_label", "unclosed_quote", "wrong_column_count"):
        assert quarantine_reasons.get(code, 0) > 0, quarantine_reasons
    record_figure(
        "fuzzed corpus: JSONL, CSV, gzip, truncated gzip",
        runs=1,
        outcome="no crash; every batch adds up; no absorbed line",
        figures={
            "files": len(good) + 1,
            "lines": sum(b[2] for b in batches),
            "loaded": sum(b[3] for b in batches),
            "quarantined": sum(b[5] for b in batches),
            "reasons": quarantine_reasons,
        },
    )


def _source_path(batches: list[tuple], path: Path) -> str:
    matches = [b[0] for b in batches if Path(b[0]).name == path.name]
    assert matches, (path, batches)
    return matches[0]
