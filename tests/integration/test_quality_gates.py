"""Data-quality gates on real batches: four good batches make the history, a fifth is good or bad in
one way, and the gate for that way (and only that one) fails with its severity.

Then the gate in the graph: a run on good data promotes; a batch with future timestamps blocks the
next run before stage 1, the active set stays as it was, and the run summary says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.quality import gates

pytestmark = [pytest.mark.integration]

CHUNK = 1000


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> list[dict]:
    path = tmp_path_factory.mktemp("qg") / "corpus.jsonl"
    generate_corpus(5 * CHUNK, 3, path, days=35)
    return [json.loads(x) for x in path.read_text().splitlines()]


def _write(path: Path, rows: list[dict], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra)
    return path


def _history(url: str, lines: list[dict], tmp: Path) -> None:
    for i in range(4):
        ingest_file(url, _write(tmp / f"good{i}.jsonl", lines[i * CHUNK : (i + 1) * CHUNK]))


CYRILLIC = str.maketrans("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                         "абцдефгхийклмнопярстувшжызАБЦДЕФГХИЙКЛМНОПЯРСТУВШЖЫЗ")  # fmt: skip


def _relabel(rows: list[dict], every: int, **fields) -> list[dict]:
    return [{**r, **fields} if i % every == 0 else r for i, r in enumerate(rows)]


BAD = {
    "good": lambda rows, old: rows,
    "a tenth of the volume": lambda rows, old: rows[: CHUNK // 10 * 2][::2] + rows[1:40:2],
    "spam share doubles": lambda rows, old: [{**r, "is_spam": True} if i % 3 == 0 else r for i, r in enumerate(rows)],
    "labels missing": lambda rows, old: _relabel(rows, 2, is_spam=None),
    "texts truncated": lambda rows, old: [{**r, "text": r["text"][:12]} for r in rows],
    "timestamps in the future": lambda rows, old: _relabel(rows, 50, timestamp="2099-01-01T00:00:00Z"),
    "a re-sent export": lambda rows, old: old[:700] + rows[:300],
    "another market's script": lambda rows, old: [{**r, "text": r["text"].translate(CYRILLIC)} if i % 5 < 3 else r
                                                  for i, r in enumerate(rows)],
}  # fmt: skip
EXPECTED = {
    "good": set(),
    "a tenth of the volume": {("volume", "warning")},
    "spam share doubles": {("spam_share", "critical")},
    "labels missing": {("unlabelled_share", "warning")},
    "texts truncated": {("text_length", "critical")},
    "timestamps in the future": {("future_timestamps", "critical")},
    "a re-sent export": {("duplicate_share", "warning")},
    "another market's script": {("language_mix", "warning")},
}


@pytest.mark.parametrize("kind", list(BAD))
def test_each_bad_batch_trips_its_gate(fresh_db: str, lines: list[dict], tmp_path: Path, kind: str) -> None:
    _history(fresh_db, lines, tmp_path)
    fifth = lines[4 * CHUNK :]
    ingest_file(fresh_db, _write(tmp_path / "fifth.jsonl", BAD[kind](fifth, lines[:CHUNK])))
    with psycopg.connect(fresh_db) as conn:
        v = gates.validate_newest_batch(conn, run_id="test")
        conn.commit()
        stored = conn.execute(
            "select gate, severity, status, detail from patas.quality_gate_results where batch_id = %s",
            (v.batch_id,),
        ).fetchall()
    failed = {(r.gate, r.severity) for r in v.results if r.status == "failed"}
    assert failed == EXPECTED[kind], [r for r in v.results if r.status != "passed"]
    assert v.success == (not any(sev == "critical" for _, sev in failed))
    assert {(g, s) for g, s, st, _ in stored if st == "failed"} == failed
    assert v.batch_id == 5 and len(stored) == len(gates.GATES)  # every gate has a row
    if kind == "good":
        assert all(st == "passed" for _, _, st, _ in stored), stored
    if kind == "texts truncated":  # great-expectations' data-docs page of each suite validated
        assert set(v.data_docs) == {"raw_messages_batch_rows", "raw_messages_batch_totals"}
        page = v.data_docs["raw_messages_batch_rows"]
        assert "Great Expectations" in page and "text_length" in page and "Failed" in page
    if kind == "another market's script":
        detail = next(d for g, _, _, d in stored if g == "language_mix")
        assert "(this batch: cyrillic 7" in detail and "history: latin 7" in detail, detail


def test_the_script_classifier_is_cheap_and_right(fresh_db: str, tmp_path: Path) -> None:
    texts = ["hello there", "привет всем", "مرحبا", "你好世界", "สวัสดี", "안녕하세요", "γεια σου", "12345 !!",
             "ok привет всем друзья"]  # fmt: skip
    ingest_file(fresh_db, _write(tmp_path / "mix.jsonl", [{"text": t, "is_spam": False} for t in texts]))
    with psycopg.connect(fresh_db) as conn:
        shares = gates.script_shares(conn, 1)
    share = 1 / len(texts)
    assert shares == pytest.approx({"latin": share, "cyrillic": 2 * share, "arabic": share, "cjk": share,
                                    "thai": share, "hangul": share, "greek": share, "other": share}, abs=1e-5)  # fmt: skip
    assert gates.mix_distance({"latin": 1.0}, {"latin": 0.5, "cyrillic": 0.5}) == pytest.approx(0.5)


def test_a_broken_export_trips_the_quarantine_gate(fresh_db: str, lines: list[dict], tmp_path: Path) -> None:
    _history(fresh_db, lines, tmp_path)
    broken = "".join("{not json\n" for _ in range(400))
    ingest_file(fresh_db, _write(tmp_path / "fifth.jsonl", lines[4 * CHUNK :], extra=broken))
    with psycopg.connect(fresh_db) as conn:
        v = gates.validate_newest_batch(conn)
    assert [(r.gate, r.severity) for r in v.critical_failures] == [("quarantine_share", "critical")]
    assert "quarantine share 0.2857" in v.critical_failures[0].detail


def test_without_history_only_the_absolute_gates_run(
    fresh_db: str, lines: list[dict], tmp_path: Path
) -> None:
    ingest_file(fresh_db, _write(tmp_path / "one.jsonl", lines[:CHUNK]))
    with psycopg.connect(fresh_db) as conn:
        v = gates.validate_newest_batch(conn)
    status = {r.gate: r.status for r in v.results}
    assert status == {
        "volume": "skipped", "spam_share": "skipped", "unlabelled_share": "skipped", "text_length": "skipped",
        "duplicate_share": "passed", "quarantine_share": "passed", "future_timestamps": "passed",
        "language_mix": "skipped",
    }  # fmt: skip
    assert v.success


def test_thresholds_come_from_the_user_file(fresh_db: str, lines: list[dict], tmp_path: Path) -> None:
    _history(fresh_db, lines, tmp_path)
    ingest_file(
        fresh_db, _write(tmp_path / "fifth.jsonl", BAD["a tenth of the volume"](lines[4 * CHUNK :], []))
    )
    user = tmp_path / "quality_gates.toml"
    user.write_text('[gates.volume]\nseverity = "critical"\n')
    with psycopg.connect(fresh_db) as conn:
        v = gates.validate_newest_batch(conn, gates.load_config(user))
    assert [r.gate for r in v.critical_failures] == ["volume"]
    user.write_text('[gates.volume]\nseverity = "loud"\n')
    with pytest.raises(gates.QualityConfigError, match="severity must be one of"):
        gates.load_config(user)
    user.write_text("[gates.colour]\nseverity = 'off'\n")
    with pytest.raises(gates.QualityConfigError, match="unknown gate 'colour'"):
        gates.load_config(user)


# ---- the gate in the graph -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blocked(server_url: str, lines: list[dict], tmp_path_factory) -> dict:
    import os

    from patas.bench.harness import fresh_database, patched_environ
    from patas.runner import run_pipeline
    from python_steps.publish.report import render_summary
    from python_steps.settings import load_settings

    tmp = tmp_path_factory.mktemp("qg_run")
    with fresh_database(server_url, f"patas_qg_{os.getpid()}") as url:
        env = {
            "DAGSTER_HOME": str(tmp / "dagster"),
            "PATAS_HOME": str(tmp / "home"),
            "PATAS_DATABASE_URL": url,
        }
        with patched_environ(env):
            settings = load_settings()
            _history(url, lines, tmp)
            good = run_pipeline(settings, url)
            good_metrics = Path(good["metrics_file"]).read_text()
            with psycopg.connect(url) as conn:
                active_before = conn.execute("select rule_id from marts.active_rules order by 1").fetchall()
                audit_before = conn.execute("select count(*) from patas.rule_audit").fetchone()[0]
            bad = BAD["timestamps in the future"](lines[4 * CHUNK :], [])
            ingest_file(url, _write(tmp / "future.jsonl", bad))
            second = run_pipeline(settings, url)
            with psycopg.connect(url) as conn:
                active_after = conn.execute("select rule_id from marts.active_rules order by 1").fetchall()
                audit_after = conn.execute("select count(*) from patas.rule_audit").fetchone()[0]
                lifecycle_runs = conn.execute(
                    "select count(*) from patas.rule_audit where run_id = %s", (second["run_id"],)
                ).fetchone()[0]
        yield {"good": good, "second": second, "text": render_summary(second),
               "active": (active_before, active_after), "audit": (audit_before, audit_after),
               "lifecycle_runs": lifecycle_runs, "good_metrics": good_metrics,
               "second_metrics": Path(second["metrics_file"]).read_text()}  # fmt: skip


@pytest.mark.slow
def test_a_run_on_good_data_passes_the_gates_and_promotes(blocked: dict) -> None:
    good = blocked["good"]
    assert good["success"], good.get("failures")
    assert good["rules_by_status"].get("active", 0) > 0
    statuses = {g["gate"]: g["status"] for g in good["quality_gates"]}
    assert statuses.pop("active_precision") == "skipped"  # the first run has no earlier run to compare with
    assert set(statuses) >= {"evaluation_window", "language_mix"} and set(statuses.values()) == {"passed"}
    # The run report links great-expectations' validation pages (data docs) of the run's gates.
    html = Path(good["report_file"]).with_suffix(".html").read_text()
    for suite in ("raw_messages_batch_rows", "raw_messages_batch_totals", "evaluation_gates"):
        link = f"data_docs/run_{good['run_id']}/{suite}.html"
        assert f"<a href='{link}'>" in html and (Path(good["report_file"]).parent / link).is_file(), suite
    from prometheus_client.parser import text_string_to_metric_families

    text = blocked["good_metrics"]  # read right after the good run (the blocked run rewrites the file)
    samples = {
        s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels
    }
    assert samples["patas_last_run_success"] == 1.0 and samples["patas_warehouse_up"] == 1.0


@pytest.mark.slow
def test_a_critical_gate_blocks_promotion_and_says_why(blocked: dict) -> None:
    second, text = blocked["second"], blocked["text"]
    assert second["success"] is False
    assert any("messages_batch_passes_quality_gates" in f for f in second["failures"]), second["failures"]
    assert blocked["active"][0] == blocked["active"][1] and blocked["active"][0]
    assert blocked["audit"][0] == blocked["audit"][1] and blocked["lifecycle_runs"] == 0
    assert "CRITICAL future_timestamps: 20 event time(s) more than 3600 s after ingestion" in text, text
    assert "BLOCKED:" in text
    assert Path(second["report_file"]).exists()
    html = Path(second["report_file"]).with_suffix(".html").read_text()
    assert "Blocked by a critical data-quality gate" in html and "future_timestamps" in html
