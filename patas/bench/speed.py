"""``patas bench speed``: every stage timed on a fresh database, next to its physical floor.

How stages are timed. The end-to-end figure is the real job: ``patas ingest`` then ``patas run``
through Dagster on a fresh database, and its per-stage times (``end_to_end.stage_seconds``) are read
from the run's Dagster event log. Beside it, a controlled **staged run** measures each stage against
its floor at a fixed rule count (shadow evaluation with ``target_rules`` rules, which the real job
cannot be told to draft): it calls the same functions the Dagster assets call (``python_steps.ingest``, ``clustering``, ``drafting``, ``lifecycle``,
``exports``) and runs dbt as a subprocess with ``dbt build --select <the stage's models>`` and the
run's window vars, exactly as the ``patas_dbt_models`` asset does for the whole project (dbt
``build`` runs the models' tests too, as the pipeline does). The one-time ``dbt parse`` is timed
apart. The end-to-end figure is a separate run of the real thing on a second fresh database:
``patas ingest`` (``ingest_file``) then ``patas run`` through Dagster
(``patas.runner.run_pipeline``), from the file to the exports.

Floors, measured in the same run on the same server:

- ``copy_floor_s``: a bare ``COPY`` of the same rows (parsed and formatted beforehand, untimed)
  into an unindexed table with the same columns, as ``patas.bench.ingest_floor`` measures it;
  ``copy_lines_floor_s``: a ``COPY`` of the raw JSONL lines as one text column (the bytes alone);
- ``scan_floor_s``: one sequential scan of ``raw.messages`` with a ``GROUP BY`` (parallel query
  allowed): the least a stage that reads every message can cost.

To measure shadow evaluation at a fixed rule count (``target_rules``, 1,000 by default), drafted
rules are padded when drafting yields fewer: first by drafting again with a lower bar (more
phrases, less precise signals: :data:`RELAXED_DRAFTING`), then, if still short, with single-signal
rules from the stage-1 signal counts (strongest spam signals first, one in ten a ``text contains``
predicate so both evaluation paths are exercised). ``rules_drafted``, ``rules_padded``
(``rules_padded_from``) and ``rules_evaluated`` say exactly how many of each there were.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from patas.bench import ingest_floor
from patas.bench.harness import (
    cached_corpus,
    code_version,
    dbt_node_timings,
    fresh_database,
    machine_info,
    patched_environ,
    ratio,
    rounded,
    run_dbt,
    server_pid,
)
from patas.bench.memory import MemorySampler, PhasePeak
from python_steps.mining.embeddings import EmbeddingConfig
from python_steps.runspec import RunSpec
from python_steps.settings import load_settings

# dbt selections of the stages (model names from docs/contracts.md); '+' takes the upstream closure.
STAGE1_SELECT = (
    "+signal_label_counts",
    "+stage1_candidates",
    "+stage1_uncovered_spam",
    "int_messages_windowed",
)
# Shadow evaluation reads the Python steps' tables through staging views (only staging reads a
# source): those views are built with it.
SHADOW_SELECT = (
    "source:patas+,path:models/staging",
    "int_message_labels_overridden",  # the effective labels shadow evaluation reads
    "rule_hits",
    "rule_evaluations",
    "rule_overlaps",
)
POST_LIFECYCLE_SELECT = ("ruleset_evaluation", "active_rules", "rule_history")
# A data test runs with a stage only when all the models it reads are built by then: stage 1 and
# shadow evaluation take only tests whose parents are all selected ("cautious"); the last dbt step
# (after the lifecycle) takes every test that touches its models ("eager"), the rest already built.
CAUTIOUS = ("--indirect-selection", "cautious")

PAD_KINDS = ("domain", "host", "phone", "short_code", "handle", "email", "signature", "ngram")
PAD_PREDICATE_EVERY = 10  # one padded rule in ten is a text_contains predicate
PAD_MIN_SPAM = 2
DRAFT_MAX_RULES = RunSpec().max_rules  # what the rule_drafts asset drafts by default


@dataclass
class StageRecord:
    stage: str
    seconds: float
    rows: int | None = None
    reference: str | None = None
    reference_s: float | None = None
    peak: PhasePeak = field(default_factory=PhasePeak)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "rows_per_s": round(self.rows / self.seconds) if self.rows and self.seconds else None,
            "reference": self.reference,
            "reference_s": rounded(self.reference_s),
            "ratio_to_reference": ratio(self.seconds, self.reference_s),
            **self.peak.as_dict(),
            **self.detail,
        }


class Stages:
    """Times named stages (and their memory peaks when a sampler is given)."""

    def __init__(self, sampler: MemorySampler | None = None) -> None:
        self.sampler = sampler
        self.records: dict[str, StageRecord] = {}

    def run(
        self, name: str, fn: Callable[[], Any], rows: int | None = None, *, may_time_out: bool = False
    ) -> Any:
        """Run and time ``fn``. With ``may_time_out``, a statement cancelled by the statement
        timeout is recorded on the stage (``timed_out``) and the run goes on (result None)."""
        phase = self.sampler.phase() if self.sampler else contextlib.nullcontext(PhasePeak())
        detail: dict[str, Any] = {}
        result = None
        with phase as peak:
            t0 = time.perf_counter()
            try:
                result = fn()
            except psycopg.errors.QueryCanceled as exc:
                if not may_time_out:
                    raise
                detail = {"timed_out": True, "error": str(exc).strip().splitlines()[0]}
            elapsed = time.perf_counter() - t0
        self.records[name] = StageRecord(name, elapsed, rows, peak=peak, detail=detail)
        return result


# ---- floors ------------------------------------------------------------------------------------


def copy_floor(url: str, corpus: Path, work_dir: Path) -> float:
    """Seconds for a bare COPY of the rows ingestion loads (already parsed and formatted as COPY
    text, untimed) into an unindexed table with the same columns: ``patas.bench.ingest_floor``'s
    floor, so both benchmarks report the same reference."""
    work_dir.mkdir(parents=True, exist_ok=True)
    copy_file = work_dir / "rows.copy"
    try:
        ingest_floor.write_copy_file(corpus, copy_file)
        return ingest_floor.time_floor(url, copy_file)
    finally:
        copy_file.unlink(missing_ok=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("drop table if exists floor_messages")


def copy_lines_floor(url: str, corpus: Path, block: int = 1 << 20) -> float:
    """Seconds to COPY the corpus's raw lines, one text value each, into a new unindexed table:
    the bytes alone, nothing parsed (a lower floor than :func:`copy_floor`)."""
    with psycopg.connect(url) as conn:
        conn.execute("create schema if not exists bench")
        conn.execute("drop table if exists bench.copy_floor")
        conn.execute("create table bench.copy_floor (line text)")
        conn.commit()
        t0 = time.perf_counter()
        # JSON escapes control characters, so \x01 and \x02 never occur in a JSONL line: each line
        # is one CSV field, taken verbatim.
        with (
            conn.cursor() as cur,
            cur.copy(
                "copy bench.copy_floor (line) from stdin with (format csv, delimiter e'\\x01', quote e'\\x02')"
            ) as cp,
            open(corpus, "rb") as fh,
        ):
            while chunk := fh.read(block):
                cp.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("drop table bench.copy_floor")
        conn.commit()
    return elapsed


def scan_floor(url: str) -> tuple[float, int]:
    """Seconds for one sequential scan of raw.messages with a GROUP BY; and the rows it read."""
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        rows = conn.execute(
            "select is_spam, count(*), sum(octet_length(text)) from raw.messages group by is_spam"
        ).fetchall()
        elapsed = time.perf_counter() - t0
    return elapsed, sum(r[1] for r in rows)


# ---- padding to a fixed rule count -------------------------------------------------------------

# Drafting with a lower bar (more phrases, less precise signals): the first source of extra rules.
RELAXED_DRAFTING = {
    "min_spam_count": 2,
    "min_spam_share": 0.6,
    "max_phrase_ham_count": 50,
    "min_conjunction_base_share": 0.3,
    "max_conjunction_bases": 2000,
}


def _rule_count(conn: psycopg.Connection) -> int:
    return conn.execute("select count(distinct rule_id) from patas.rule_drafts").fetchone()[0]


def _pad_rule_json(kind: str, value: str, predicate: bool) -> dict[str, str]:
    if kind == "ngram":
        return {"kind": "text_contains" if predicate else "text_phrase", "value": value}
    return {"kind": kind, "op": "eq", "value": value}


def _insert_drafts(conn: psycopg.Connection, drafts: Sequence[Any], run_id: str) -> None:
    """Write padding drafts and their signal clauses (no counter-examples: evaluation does not
    read them, and they are drafting's cost, not shadow evaluation's)."""
    rows = [
        (d.rule_id, Jsonb(d.rule_json), d.rule_canonical, d.description, d.sql_expression, d.regex,
         d.origin, d.pattern_id, d.evaluation_kind, d.complexity, run_id)
        for d in drafts
    ]  # fmt: skip
    clauses = [(d.rule_id, *c) for d in drafts for c in d.clauses or []]
    with conn.cursor() as cur:
        cur.executemany(
            """
            insert into patas.rule_drafts (rule_id, version, rule_json, rule_canonical, description,
                sql_expression, regex, origin, pattern_id, evaluation_kind, complexity, drafted_run_id)
            values (%s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            rows,
        )
        cur.executemany(
            "insert into patas.rule_signal_clauses (rule_id, clause_no, signal_kind, signal_value)"
            " values (%s, %s, %s, %s)",
            clauses,
        )


def _signal_count_drafts(conn: psycopg.Connection, need: int, known: set[str]) -> list[Any]:
    """Single-signal rules from ``marts.signal_label_counts``, strongest spam signals first."""
    from python_steps.mining import drafting

    candidates = conn.execute(
        """
        select signal_kind, signal_value, spam_count, ham_count
        from marts.signal_label_counts
        where signal_kind = any(%s) and spam_count >= %s
        order by spam_count desc, ham_count, signal_kind, signal_value
        limit %s
        """,
        (list(PAD_KINDS), PAD_MIN_SPAM, need * 4),
    ).fetchall()
    out = []
    for i, (kind, value, spam, ham) in enumerate(candidates):
        if len(out) >= need:
            break
        rule_json = _pad_rule_json(kind, value, predicate=i % PAD_PREDICATE_EVERY == 0)
        d = drafting.make_draft(
            rule_json, origin="pattern_mining", pattern_id=f"bench_padding:{kind}:{value}", spam=spam, ham=ham
        )
        if d is not None and d.rule_id not in known:
            known.add(d.rule_id)
            out.append(d)
    return out


def pad_rules(conn: psycopg.Connection, target: int, run_id: str) -> dict[str, int]:
    """Top ``patas.rule_drafts`` up to ``target`` valid rules; returns how many came from where.

    First drafting itself with a lower bar (:data:`RELAXED_DRAFTING`); then, if still short,
    single-signal rules from the stage-1 signal counts (one in ten a ``text contains`` predicate).
    Every padded rule is validated and compiled by the rule compiler (``drafting.make_draft``).
    """
    from python_steps.mining import drafting

    drafting.ensure_schema(conn)
    added = {"relaxed_drafting": 0, "signal_counts": 0}
    need = target - _rule_count(conn)
    if need <= 0:
        conn.commit()
        return added
    known = {r[0] for r in conn.execute("select distinct rule_id from patas.rule_drafts")}
    relaxed = drafting.DraftingConfig(**RELAXED_DRAFTING)
    extra = [d for d in drafting.draft_rules(conn, run_id=run_id, max_rules=target * 2, config=relaxed)
             if d.rule_id not in known][:need]  # fmt: skip
    known.update(d.rule_id for d in extra)
    _insert_drafts(conn, extra, run_id)
    added["relaxed_drafting"] = len(extra)
    need -= len(extra)
    if need > 0:
        more = _signal_count_drafts(conn, need, known)
        _insert_drafts(conn, more, run_id)
        added["signal_counts"] = len(more)
    conn.commit()
    return added


# ---- the staged run ----------------------------------------------------------------------------


def staged_run(
    url: str,
    corpus: Path,
    *,
    run_id: str,
    work_dir: Path,
    profile: str,
    stages: Stages,
    split: str = "auto",
    evaluation_share: int = 30,
    target_rules: int | None = None,
    statement_timeout_s: float | None = None,
) -> dict[str, Any]:
    """The pipeline, stage by stage, on ``url`` (a fresh database): the functions the Dagster assets
    call, and dbt per stage. ``target_rules``: pad the drafted rules up to this many (None: never).
    ``statement_timeout_s``: cancel a stage-2 or drafting statement running longer than this,
    record the stage as timed out and go on (padding then supplies the rules to evaluate)."""

    def connect() -> psycopg.Connection:
        conn = psycopg.connect(url)
        if statement_timeout_s:
            conn.execute(
                "select set_config('statement_timeout', %s, false)", (f"{int(statement_timeout_s * 1000)}ms",)
            )
        return conn

    from python_steps import runs
    from python_steps.ingest.load import ingest_file
    from python_steps.lifecycle import store
    from python_steps.mining import clustering, drafting, signal_matrix
    from python_steps.mining.windows import resolve_windows
    from python_steps.publish import exports

    out: dict[str, Any] = {}
    report = stages.run("ingest", lambda: ingest_file(url, corpus).as_dict())
    rows = report["loaded"]
    stages.records["ingest"].rows = report["read"]
    out["ingest_report"] = report

    with psycopg.connect(url) as conn:
        windows = resolve_windows(conn, split=split, evaluation_share=evaluation_share)
        runs.record_run(conn, run_id, windows)
    out["windows"] = json.loads(windows.to_json())
    spec = RunSpec(split=split, evaluation_share=evaluation_share, profile=profile)
    dbt: dict[str, Any] = {"work_dir": work_dir, "dbt_vars": spec.dbt_vars(windows, run_id)}
    out["dbt_parse_s"] = round(run_dbt(url, ["parse"], **dbt), 3)
    # What one dbt invocation costs before any model runs (start-up, manifest, connection).
    out["dbt_noop_s"] = round(run_dbt(url, ["run", "--select", "fqn:__bench_selects_nothing__"], **dbt), 3)

    stages.run(
        "stage1", lambda: run_dbt(url, ["build", *CAUTIOUS, "--select", *STAGE1_SELECT], **dbt), rows=rows
    )
    stages.records["stage1"].detail = dbt_node_timings(work_dir)

    settings = load_settings()
    s2_cfg = clustering.ClusterConfig(drafting=drafting.DraftingConfig(languages=settings.languages))
    s2_embedding = EmbeddingConfig.from_settings(settings)  # as `patas run`: PATAS_EMBEDDINGS_*

    def stage2(key: str) -> int:
        with connect() as conn:
            found = clustering.build_clusters(conn, s2_cfg, s2_embedding)
            clustering.write_clusters(conn, found.clusters, run_id, s2_cfg.sample_size, found.record)
            conn.commit()
        out[key] = stage2_figures(found.record)
        return len(found.clusters)

    out["clusters"] = stages.run("stage2", lambda: stage2("stage2"), may_time_out=True)
    # Stage 2 again on unchanged data: with a caching provider every embedding is a cache hit.
    stages.run("stage2_rerun", lambda: stage2("stage2_rerun"), may_time_out=True)

    def draft() -> dict[str, Any]:
        with connect() as conn:
            signals = signal_matrix.load(conn)  # as the drafting asset: the window read once
            drafts, info = drafting.draft_with_stage2(
                conn, run_id=run_id, max_rules=DRAFT_MAX_RULES, signals=signals
            )
            drafting.write_drafts(conn, drafts, run_id, signals=signals)
            conn.commit()
        return info

    info = stages.run("drafting", draft, may_time_out=True) or {}
    out["rules_drafted_by_origin"] = {k: v for k, v in sorted(info.items()) if isinstance(v, int)}
    with psycopg.connect(url) as conn:
        drafting.ensure_schema(conn)
        conn.commit()
        out["rules_drafted"] = _rule_count(conn)
    with psycopg.connect(url) as conn:
        padded = pad_rules(conn, target_rules, run_id) if target_rules else {}
        out["rules_padded"] = sum(padded.values())
        out["rules_padded_from"] = padded
        store.ensure_schema(conn)
        conn.commit()
        out["rules_evaluated"] = _rule_count(conn)
        out["rules_by_evaluation_kind"] = dict(
            conn.execute(
                "select evaluation_kind, count(distinct rule_id) from patas.rule_drafts group by 1 order by 1"
            ).fetchall()
        )

    stages.run(
        "shadow_eval",
        lambda: run_dbt(url, ["build", *CAUTIOUS, "--select", *SHADOW_SELECT], **dbt),
        rows=rows,
    )
    stages.records["shadow_eval"].detail = dbt_node_timings(work_dir)
    with psycopg.connect(url) as conn:
        out["evaluation_window_messages"] = conn.execute(
            "select count(*) from intermediate.int_messages_windowed where window_name = 'evaluation'"
        ).fetchone()[0]
        out["rule_hits"] = conn.execute("select count(*) from marts.rule_hits").fetchone()[0]

    def promote() -> dict[str, Any]:
        with psycopg.connect(url) as conn:
            summary = store.apply_lifecycle(
                conn,
                run_id=run_id,
                profile=profile,
                folds=spec.crossfit_folds,
                languages=load_settings().languages,
            )
            conn.commit()
        run_dbt(url, ["build", "--select", *POST_LIFECYCLE_SELECT], **dbt)
        return summary

    summary = stages.run("promotion", promote)
    stages.records["promotion"].detail = dbt_node_timings(work_dir)
    out["rules_active"] = summary.get("status_counts", {}).get("active", 0)

    def export() -> int:
        with psycopg.connect(url) as conn:
            return len(exports.write_exports(conn, work_dir / "exports"))

    out["export_files"] = stages.run("exports", export)
    return out


def stage2_figures(record: dict[str, Any]) -> dict[str, Any]:
    """What the issue asks of stage 2 at scale, from its run record: the share of the mining window
    that reached it, the slice and the uncovered spam, clusters, and the embedding calls and cache
    hits (zero and zero with the offline ``lexical`` provider, which neither calls nor caches)."""
    emb = record.get("embeddings", {})
    keys = ("window_messages", "slice_messages", "uncovered_spam", "no_candidate_spam", "stage2_messages",
            "stage2_share", "sample_size", "method", "clusters", "provider", "model")  # fmt: skip
    return {k: record.get(k) for k in keys} | {
        "embedding_texts": emb.get("texts", 0),
        "embedding_calls": emb.get("calls", 0),
        "embedding_cache_hits": emb.get("cache_hits", 0),
        "embedding_cache_misses": emb.get("cache_misses", 0),
        "warnings": list(record.get("warnings", [])),
    }


def _end_to_end(url: str, corpus: Path, *, work_dir: Path, profile: str) -> dict[str, Any]:
    """``patas ingest`` then ``patas run`` through Dagster on ``url`` (a fresh database): file in,
    exports out. The file is ingested first (as ``patas ingest`` does), then the whole graph runs."""
    from patas.runner import run_pipeline
    from python_steps.ingest.load import ingest_file

    home = work_dir / "home"
    env = {"PATAS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PATAS_DATABASE_URL": url}
    with patched_environ(env):
        settings = load_settings()
        t0 = time.perf_counter()
        ingest_file(url, corpus)
        ingest_s = time.perf_counter() - t0
        try:
            summary = run_pipeline(settings, url, RunSpec(profile=profile))
        except Exception as exc:  # the staged figures stand on their own; say why this one is missing
            return {"seconds": None, "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
        elapsed = time.perf_counter() - t0
    if not summary.get("success"):
        return {"seconds": None, "error": f"the run failed: {summary.get('failures')}"}
    return {
        "seconds": elapsed,
        "ingest_s": round(ingest_s, 3),
        "pipeline_s": round(elapsed - ingest_s, 3),
        # The job's own stage times, read from the Dagster event log (step start to step end).
        "stage_seconds": summary.get("stage_seconds"),
        "rules_drafted": summary.get("rules_drafted"),
        "rules_by_status": summary.get("rules_by_status"),
        "rulesets": summary.get("rulesets"),
    }


def run_speed_bench(
    rows: int,
    seed: int,
    out_path: str | Path,
    *,
    server_url: str,
    cache_dir: Path | None = None,
    target_rules: int = 1000,
    profile: str = "conservative",
    end_to_end: bool = True,
    keep_databases: bool = False,
    statement_timeout_s: float | None = None,
) -> dict[str, Any]:
    """Time every stage on ``rows`` generated messages (seed ``seed``) and write the JSON figures.

    ``server_url``: any database URL on the Postgres server to use; the benchmark creates (and
    drops) databases of its own there. ``cache_dir``: where corpora are cached and dbt writes its
    target (default ``$PATAS_HOME/bench``).
    """
    cache_dir = cache_dir or load_settings().home / "bench"
    corpus, generated = cached_corpus(rows, seed, cache_dir)
    tag = f"{rows}_{seed}_{os.getpid()}"
    work_dir = cache_dir / f"run_{tag}"
    run_id = f"bench_speed_{rows}_{seed}"
    result: dict[str, Any] = {
        "benchmark": "speed",
        "rows": rows,
        "seed": seed,
        "corpus": {"path": str(corpus), "bytes": corpus.stat().st_size, "generated_now": generated},
        "profile": profile,
        "target_rules": target_rules,
        "statement_timeout_s": statement_timeout_s,
        "method": "staged: python_steps functions + `dbt build --select` per stage; "
        "end_to_end: patas.runner.run_pipeline on a second fresh database",
    }
    with MemorySampler(server_pid(server_url)) as sampler:
        result["server_idle_pss_mb"] = rounded(sampler.overall.server_mb, 1)
        stages = Stages(sampler)
        with fresh_database(server_url, f"patas_bench_speed_{tag}", keep=keep_databases) as url:
            result["machine"] = machine_info(url)
            result["code"] = code_version()
            result.update(
                staged_run(
                    url,
                    corpus,
                    run_id=run_id,
                    work_dir=work_dir,
                    target_rules=target_rules,
                    profile=profile,
                    stages=stages,
                    statement_timeout_s=statement_timeout_s,
                )
            )
            copy_s = copy_floor(url, corpus, work_dir)
            copy_lines_s = copy_lines_floor(url, corpus)
            scan_s, scanned = scan_floor(url)
        staged_peak = sampler.overall
        e2e: dict[str, Any] | None = None
        if end_to_end:
            with (
                fresh_database(server_url, f"patas_bench_e2e_{tag}", keep=keep_databases) as url,
                sampler.phase() as e2e_peak,
            ):
                e2e = _end_to_end(url, corpus, work_dir=work_dir, profile=profile)
            e2e.update(e2e_peak.as_dict())
        overall = sampler.overall

    records = stages.records
    records["ingest"].reference, records["ingest"].reference_s = "copy_floor", copy_s
    records["stage1"].reference, records["stage1"].reference_s = "scan_floor", scan_s
    staged_total = sum(r.seconds for k, r in records.items() if k != "stage2_rerun")
    result.update(
        {
            "ingest_s": round(records["ingest"].seconds, 3),
            "copy_floor_s": round(copy_s, 3),
            "ingest_vs_copy_floor": ratio(records["ingest"].seconds, copy_s),
            "copy_lines_floor_s": round(copy_lines_s, 3),
            "stage1_s": round(records["stage1"].seconds, 3),
            "scan_floor_s": round(scan_s, 3),
            "scan_floor_rows": scanned,
            "stage1_vs_scan_floor": ratio(records["stage1"].seconds, scan_s),
            "stage2_s": round(records["stage2"].seconds, 3),
            "stage2_rerun_s": round(records["stage2_rerun"].seconds, 3)
            if "stage2_rerun" in records
            else None,
            "drafting_s": round(records["drafting"].seconds, 3),
            "shadow_eval_s": round(records["shadow_eval"].seconds, 3),
            "promotion_s": round(records["promotion"].seconds, 3),
            "exports_s": round(records["exports"].seconds, 3),
            "staged_total_s": round(staged_total, 3),
            "end_to_end_s": rounded(e2e["seconds"]) if e2e else None,
            "end_to_end": e2e,
            "stages": [r.as_dict() for r in records.values()],
            "peak_rss_mb": round(overall.client_mb, 1),
            "peak_rss_staged_mb": round(staged_peak.client_mb, 1),
            "peak_rss_self_mb": round(overall.self_peak_mb, 1),
            "peak_server_pss_mb": rounded(overall.server_mb, 1),
            "rows_per_s_end_to_end": round(rows / e2e["seconds"]) if e2e and e2e["seconds"] else None,
        }
    )
    if e2e:
        e2e["seconds"] = rounded(e2e["seconds"])
    if not keep_databases:
        shutil.rmtree(work_dir, ignore_errors=True)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return result
