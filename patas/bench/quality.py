"""``patas bench quality``: rule quality on held-out messages, per safety profile, against baselines.

For each safety profile, on a fresh database: ingest the data, run the whole pipeline (``patas
run`` through Dagster) with that profile and the requested split, and measure the **active
ruleset** (the union of the active rules) on the labelled messages of the evaluation window:
precision, recall, false positive rate, F1, and the same per ``meta.language`` where the data
has one.

**Label-blind test slice** (``test_share``, default 15): promotion decides on the labelled
evaluation window, so figures measured on that same window are in-sample for the promotion
step. The benchmark therefore hides the labels of a slice of the evaluation side before ingest:
the messages whose split bucket (``python_steps.text.normalize.split_bucket`` of the template
signature, the same bucket the hash split uses) is below ``test_share`` go in **unlabelled**
(and the hash split then holds out ``30 + test_share`` buckets, so promotion still sees the
usual 30% of labelled messages and mining the rest)
(``is_spam`` null, ``meta.label_raw`` dropped), so mining, shadow evaluation and promotion never
see their labels; they only count in coverage, as unlabelled traffic does. The headline figures
(``precision``, ``recall``, ...) are measured on that slice with the true labels;
``promotion_window`` holds the same figures on the labelled evaluation messages promotion used.
``test_share=0`` measures on the promotion window (in-sample, the older figures). With a time
split the slice is the part of the hidden buckets that falls in the evaluation window.

The baselines run on the *same* split: the window assignment is read back from
``intermediate.int_messages_windowed`` after the run (the benchmark checks that every profile's
run saw the same evaluation messages).

- ``baseline_lr_recall_at_precision``: TF-IDF + logistic regression trained on the labelled mining
  side; the best recall any threshold reaches on the evaluation side at the precision PATAS
  reached. The threshold is picked on the evaluation side: an **oracle ceiling**, not a deployable
  figure. ``baseline_lr_cv_*`` is the deployable variant (threshold from 5-fold cross-validation on
  the mining side).
- ``baseline_naive_*``: every exact URL and phone-like string of a mining-side spam is a rule (the
  seed project's approach); its precision and recall on the evaluation side.

``engine``: ``"dagster"`` (default) runs ``patas run`` (``patas.runner.run_pipeline``);
``"staged"`` runs the same steps without Dagster (``patas.bench.speed.staged_run``: the
functions the assets call and dbt per stage), which is faster to start and independent of the
orchestration wiring.

``one_run=True`` measures every profile from a single pipeline run instead: the lifecycle step
records, for each profile, the set it would make active from that evaluation
(``patas.ruleset_members``); on a fresh database that is the set a run with that profile promotes.
It is what the CI test uses (one pipeline run instead of three).

The JSON holds one object per profile under ``profiles`` (keys ``profile``, ``rules``,
``precision``, ``recall``, ``fpr``, ``f1``, ``baseline_lr_recall_at_precision``,
``baseline_naive_precision``, ``baseline_naive_recall``, ...), plus the split, the window sizes,
the baselines' own figures and the logistic regression's precision-recall curve (for the plot).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from patas.bench.harness import code_version, fresh_database, machine_info, patched_environ
from python_steps.bench.baselines import BinaryMetrics, LogisticBaseline, NaiveEntityMiner, binary_metrics
from python_steps.ingest.parsing import Reject, parse_label
from python_steps.runspec import RunSpec
from python_steps.settings import load_settings
from python_steps.text.normalize import split_bucket, template_signature

PROFILES = ("conservative", "balanced", "aggressive")
PROMOTION_SHARE = 30  # split buckets of labelled evaluation messages (the pipeline's default share)
DEFAULT_TEST_SHARE = 15  # split buckets [0, 15): labels hidden; the hash split holds out 30 + 15
ENGINES = ("dagster", "staged")
REFERENCE_PRECISIONS = (0.90, 0.95, 0.98, 0.99)  # the LR baseline is also reported at these

MESSAGES_SQL = """
select e.external_id, e.text, e.is_spam, e.meta ->> 'language' as language, w.window_name
from intermediate.int_messages_windowed as w
inner join intermediate.int_messages_enriched as e
    on w.message_id = e.message_id
where e.is_spam is not null
order by e.external_id
"""

FLAGGED_SQL = """
select distinct e.external_id
from marts.rule_hits as h
inner join intermediate.int_messages_enriched as e
    on h.message_id = e.message_id
where h.window_name = 'evaluation' and h.rule_id = any(%s)
"""


@dataclass(frozen=True)
class Message:
    external_id: str
    text: str
    is_spam: bool
    language: str | None
    window: str


@dataclass(frozen=True)
class Split:
    mining: tuple[Message, ...]
    evaluation: tuple[Message, ...]

    @property
    def fingerprint(self) -> str:
        ids = "\n".join(m.external_id for m in self.evaluation)
        return hashlib.sha256(ids.encode()).hexdigest()[:16]

    @property
    def languages(self) -> list[str]:
        return sorted({m.language for m in self.evaluation if m.language})


TEST_MESSAGES_SQL = """
select e.external_id, e.text, e.meta ->> 'language' as language, w.window_name
from intermediate.int_messages_windowed as w
inner join intermediate.int_messages_enriched as e
    on w.message_id = e.message_id
where w.window_name = 'evaluation' and e.external_id = any(%s)
order by e.external_id
"""

LABEL_KEYS = ("is_spam", "label")


def label_blind_copy(data_path: Path, out_path: Path, test_share: int) -> dict[str, bool]:
    """Write ``data_path`` (JSONL, optionally gzipped) to ``out_path`` with the labels of the
    test slice removed; return the hidden labels by external id.

    A line is in the slice when it is a labelled JSON object with an ``id`` and a text whose split
    bucket is below ``test_share``. Every other line (unlabelled, no id, malformed: ingest will
    account for it) is copied unchanged, so the file has the same lines in the same order.
    """
    hidden: dict[str, bool] = {}
    opener = gzip.open if data_path.suffix == ".gz" else open
    with (
        opener(data_path, "rt", encoding="utf-8", newline="") as src,
        out_path.open("w", encoding="utf-8") as dst,
    ):
        for line in src:
            rec = _test_record(line, test_share)
            if rec is None:
                dst.write(line if line.endswith("\n") else line + "\n")
                continue
            obj, ext_id, label = rec
            hidden[ext_id] = label
            for key in LABEL_KEYS:
                obj.pop(key, None)
            if isinstance(obj.get("meta"), dict):
                obj["meta"] = {k: v for k, v in obj["meta"].items() if k != "label_raw"}
            dst.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return hidden


def _test_record(line: str, test_share: int) -> tuple[dict[str, Any], str, bool] | None:
    if test_share <= 0:
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or obj.get("id") in (None, ""):
        return None
    raw = next((obj[k] for k in LABEL_KEYS if k in obj), None)
    try:
        label = parse_label(raw)
    except Reject:
        return None
    if label is None:
        return None
    signature = template_signature(obj["text"])
    if signature is None or split_bucket(signature) >= test_share:
        return None
    return obj, str(obj["id"]), label


def read_test_messages(conn: psycopg.Connection, hidden: dict[str, bool]) -> tuple[Message, ...]:
    """The label-blind slice as it landed in the evaluation window, with its true labels."""
    rows = conn.execute(TEST_MESSAGES_SQL, (sorted(hidden),)).fetchall()
    return tuple(Message(ext, text, hidden[ext], lang, window) for ext, text, lang, window in rows)


def read_split(conn: psycopg.Connection) -> Split:
    rows = [Message(*r) for r in conn.execute(MESSAGES_SQL).fetchall()]
    return Split(
        mining=tuple(m for m in rows if m.window == "mining"),
        evaluation=tuple(m for m in rows if m.window == "evaluation"),
    )


def _metrics(flags: Sequence[bool], messages: Sequence[Message]) -> BinaryMetrics:
    return binary_metrics(list(flags), [m.is_spam for m in messages])


def _per_language(flags: Sequence[bool], messages: Sequence[Message], languages: list[str]) -> dict:
    out = {}
    for lang in languages:
        idx = [i for i, m in enumerate(messages) if m.language == lang]
        out[lang] = {
            "messages": len(idx),
            **_metrics([flags[i] for i in idx], [messages[i] for i in idx]).as_dict(),
        }
    return out


def _ruleset_flags(
    conn: psycopg.Connection, rule_ids: Sequence[str], messages: Sequence[Message]
) -> list[bool]:
    flagged = {r[0] for r in conn.execute(FLAGGED_SQL, (list(rule_ids),))}
    return [m.external_id in flagged for m in messages]


def _active_rule_ids(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("select rule_id from patas.rule_lifecycle where status = 'active' order by 1")
    return [r[0] for r in rows]


def _origins(conn: psycopg.Connection, rule_ids: list[str]) -> dict[str, int]:
    """How many of ``rule_ids`` each drafting origin proposed (pattern_mining, semantic, llm, ...)."""
    rows = conn.execute(
        "select origin, count(*) from (select distinct on (rule_id) rule_id, origin from patas.rule_drafts"
        " where rule_id = any(%s) order by rule_id, version desc) as d group by origin order by origin",
        (rule_ids,),
    ).fetchall()
    return {o: int(n) for o, n in rows}


def _profile_rule_ids(conn: psycopg.Connection, profile: str) -> list[str]:
    rows = conn.execute(
        "select rule_id from patas.ruleset_members where ruleset_name = %s order by 1",
        ("profile:" + profile,),
    )
    return [r[0] for r in rows]


def _run(
    url: str, data_path: Path, *, split: str, profile: str, work_dir: Path, engine: str, evaluation_share: int,
    two_stage: bool = True, stage2: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    if engine == "staged":
        from patas.bench.speed import Stages, staged_run

        stages = Stages()
        out = staged_run(
            url, data_path, run_id=f"bench_quality_{profile}", work_dir=work_dir, profile=profile,
            stages=stages, split=split, evaluation_share=evaluation_share,
        )  # fmt: skip
        with psycopg.connect(url) as conn:
            status = dict(
                conn.execute("select status, count(*) from patas.rule_lifecycle group by 1 order by 1")
            )
        summary = {
            "windows": out["windows"],
            "rules_drafted": out["rules_drafted"],
            "rules_by_status": status,
        }
        seconds = sum(r.seconds for r in stages.records.values())
        return {"ingest": out["ingest_report"], "run_seconds": round(seconds, 1), "summary": summary}

    from patas.runner import run_pipeline
    from python_steps.ingest.load import ingest_file

    ingest = ingest_file(url, data_path).as_dict()
    home = work_dir / "home"
    env = {"PATAS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PATAS_DATABASE_URL": url}
    with patched_environ(env):
        t0 = time.perf_counter()
        spec = RunSpec(
            split=split,
            profile=profile,
            evaluation_share=evaluation_share,
            two_stage=two_stage,
            **(stage2 or {}),
        )
        summary = run_pipeline(load_settings(), url, spec)
        elapsed = time.perf_counter() - t0
    if not summary.get("success"):
        raise RuntimeError(f"pipeline run ({profile}) failed: {summary.get('failures')}")
    return {"ingest": ingest, "run_seconds": round(elapsed, 1), "summary": summary}


def _profile_record(
    profile: str,
    rule_ids: list[str],
    flags: list[bool],
    split: Split,
    lr: LogisticBaseline,
    naive: dict[str, Any],
    promotion: dict[str, Any],
) -> dict[str, Any]:
    m = _metrics(flags, split.evaluation)
    lr_fig = lr.at_precision(m.precision) if rule_ids and m.true_positives else None
    return {
        "profile": profile,
        "rules": len(rule_ids),
        **{k: v for k, v in m.as_dict().items()},
        "promotion_window": promotion,
        "per_language": _per_language(flags, split.evaluation, split.languages),
        "baseline_lr_recall_at_precision": lr_fig["oracle_recall"] if lr_fig else None,
        "baseline_lr_oracle_precision": lr_fig["oracle_precision"] if lr_fig else None,
        "baseline_lr_cv_precision": lr_fig["cv_threshold_precision"] if lr_fig else None,
        "baseline_lr_cv_recall": lr_fig["cv_threshold_recall"] if lr_fig else None,
        "baseline_naive_precision": naive["precision"],
        "baseline_naive_recall": naive["recall"],
        "baseline_naive_fpr": naive["fpr"],
        "baseline_naive_rules": naive["rules"],
    }


def _baselines(split: Split) -> tuple[LogisticBaseline, dict[str, Any]]:
    train_texts = [m.text for m in split.mining]
    train_labels = [m.is_spam for m in split.mining]
    lr = LogisticBaseline.fit(
        train_texts, train_labels, [m.text for m in split.evaluation], [m.is_spam for m in split.evaluation]
    )
    miner = NaiveEntityMiner.fit(train_texts, train_labels)
    flags = miner.predict(m.text for m in split.evaluation)
    naive = {
        "rules": len(miner.rules),
        **_metrics(flags, split.evaluation).as_dict(),
        "per_language": _per_language(flags, split.evaluation, split.languages),
    }
    return lr, naive


def run_quality_bench(
    data_path: str | Path,
    out_path: str | Path,
    *,
    split: str = "hash",
    server_url: str,
    profiles: Sequence[str] = PROFILES,
    one_run: bool = False,
    engine: str = "dagster",
    cache_dir: Path | None = None,
    keep_databases: bool = False,
    test_share: int = DEFAULT_TEST_SHARE,
    two_stage: bool = True,
    stage2: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure each profile's active ruleset and both baselines on the held-out side; write JSON.
    ``two_stage`` False: stage 1 only (``patas run --no-two-stage``; the dagster engine only);
    ``stage2``: stage-2 run settings (``stage2_slice``, ``stage2_eps``), the dagster engine only."""
    if split not in ("hash", "time"):
        raise ValueError(f"split must be 'hash' or 'time', not {split!r}")
    if not 0 <= test_share < 100:
        raise ValueError(f"test_share is a number of split buckets in [0, 100), not {test_share!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if (not two_stage or stage2) and engine != "dagster":
        raise ValueError("stage-2 settings (--no-two-stage, --stage2-*) are measured with the dagster engine")
    if stage2:
        RunSpec(**stage2)  # refused here, before any database is made
    data_path = Path(data_path)
    if not data_path.exists():
        raise FileNotFoundError(f"no such data file: {data_path}")
    cache_dir = cache_dir or load_settings().home / "bench"
    work_dir = cache_dir / f"quality_{os.getpid()}"
    work_dir.mkdir(parents=True, exist_ok=True)
    hidden: dict[str, bool] = {}
    if test_share:
        blind = work_dir / "label_blind.jsonl"
        hidden = label_blind_copy(data_path, blind, test_share)
        source_path = blind
    else:
        source_path = data_path
    test: tuple[Message, ...] = ()
    records: list[dict[str, Any]] = []
    runs: dict[str, Any] = {}
    split_data: Split | None = None
    lr: LogisticBaseline | None = None
    naive: dict[str, Any] = {}
    drafted_union: dict[str, Any] = {}
    windows: Any = None
    machine: dict[str, Any] = {}
    run_profiles = [profiles[0]] if one_run else list(profiles)
    for run_profile in run_profiles:
        name = f"patas_bench_quality_{run_profile}_{os.getpid()}"
        with fresh_database(server_url, name, keep=keep_databases) as url:
            run = _run(
                url, source_path, split=split, profile=run_profile, work_dir=work_dir, engine=engine,
                evaluation_share=PROMOTION_SHARE + test_share, two_stage=two_stage, stage2=stage2,
            )  # fmt: skip
            with psycopg.connect(url) as conn:
                this_split = read_split(conn)
                if split_data is None:
                    split_data = this_split
                    test = read_test_messages(conn, hidden) if test_share else split_data.evaluation
                    if test_share and not any(m.is_spam for m in test):
                        raise RuntimeError(
                            f"the label-blind slice (buckets < {test_share}) holds no spam in the "
                            "evaluation window: nothing to measure recall on"
                        )
                    measured_split = Split(mining=split_data.mining, evaluation=test)
                    lr, naive = _baselines(measured_split)
                    windows = run["summary"].get("windows")
                    machine = machine_info(url)
                    # Diagnostic: every drafted rule at once, before any safety profile gates it.
                    drafted = [
                        r[0]
                        for r in conn.execute("select distinct rule_id from patas.rule_drafts order by 1")
                    ]
                    union = _metrics(_ruleset_flags(conn, drafted, test), test)
                    drafted_union = {"rules": len(drafted), **union.as_dict()}
                elif this_split.fingerprint != split_data.fingerprint:
                    raise RuntimeError(f"the {run_profile} run saw a different evaluation side")
                measured = profiles if one_run else [run_profile]
                for profile in measured:
                    rule_ids = _profile_rule_ids(conn, profile) if one_run else _active_rule_ids(conn)
                    flags = _ruleset_flags(conn, rule_ids, test)
                    promotion = _metrics(
                        _ruleset_flags(conn, rule_ids, split_data.evaluation), split_data.evaluation
                    ).as_dict()
                    record = _profile_record(profile, rule_ids, flags, measured_split, lr, naive, promotion)
                    record["rules_by_origin"] = _origins(conn, rule_ids)
                    if not one_run:
                        record["ruleset_members_agree"] = sorted(rule_ids) == _profile_rule_ids(conn, profile)
                    records.append(record)
            runs[run_profile] = {
                "run_seconds": run["run_seconds"],
                "ingest": run["ingest"],
                "rules_drafted": run["summary"].get("rules_drafted"),
                "rules_by_status": run["summary"].get("rules_by_status"),
                "stage2": {
                    k: v
                    for k, v in (run["summary"].get("stage2") or {}).items()
                    if k
                    in (
                        "method",
                        "provider",
                        "model",
                        "clusters",
                        "stage2_messages",
                        "stage2_share",
                        "rules_reused",
                        "embeddings",
                        "warnings",
                    )
                },
            }
    assert split_data is not None and lr is not None
    mining_spam = sum(m.is_spam for m in split_data.mining)
    eval_spam = sum(m.is_spam for m in split_data.evaluation)
    result = {
        "benchmark": "quality",
        "data": str(data_path),
        "split": split,
        "test_share": test_share,
        "measured_on": "label_blind_test" if test_share else "promotion_window",
        "test_messages": len(test),
        "test_spam": sum(m.is_spam for m in test),
        "hidden_labels": len(hidden),
        "windows": windows,
        "one_run": one_run,
        "engine": engine,
        "two_stage": two_stage,
        "stage2_settings": stage2 or {},
        "evaluation_fingerprint": split_data.fingerprint,
        "mining_messages": len(split_data.mining),
        "mining_spam": mining_spam,
        "evaluation_messages": len(split_data.evaluation),
        "evaluation_spam": eval_spam,
        "languages": sorted({m.language for m in test if m.language}),
        "profiles": records,
        "profile_order": profile_order(records),
        "drafted_union": drafted_union,
        "baselines": {
            "naive": naive,
            "lr": {
                "model": "tfidf word 1-2 + char_wb 3-5, logistic regression C=4 (liblinear)",
                "at_precision": {f"{p:.2f}": lr.at_precision(p) for p in REFERENCE_PRECISIONS},
                "pr_curve": lr.pr_curve(),
            },
        },
        "runs": runs,
        "machine": machine,
        "code": code_version(),
    }
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return result


# ---- random subsamples (a team's first export) ---------------------------------------------------


def sample_lines(data_path: Path, out_path: Path, size: int, seed: int) -> int:
    """Write ``size`` lines of ``data_path`` picked at random with ``seed`` (file order kept); the
    number written (all lines when the file has fewer)."""
    import random

    opener = gzip.open if data_path.suffix == ".gz" else open
    with opener(data_path, "rt", encoding="utf-8", newline="") as src:
        lines = [line if line.endswith("\n") else line + "\n" for line in src if line.strip()]
    picked = sorted(random.Random(seed).sample(range(len(lines)), min(size, len(lines))))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("".join(lines[i] for i in picked), encoding="utf-8")
    return len(picked)


def profile_order(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Do the profiles keep their order (conservative at least as precise as balanced and aggressive,
    balanced as aggressive)? A profile that flagged nothing makes no claim and is skipped."""
    by_name = {r["profile"]: r for r in records}
    pairs = [(a, b) for a, b in itertools.combinations(PROFILES, 2) if a in by_name and b in by_name]
    broken = [
        f"{a} {by_name[a]['precision']:.3f} < {b} {by_name[b]['precision']:.3f}"
        for a, b in pairs
        if by_name[a].get("precision") is not None
        and by_name[b].get("precision") is not None
        and by_name[a]["precision"] < by_name[b]["precision"]
    ]
    return {"holds": not broken, "broken": broken}


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def run_sampled_quality_bench(
    data_path: str | Path,
    out_path: str | Path,
    *,
    size: int,
    seeds: Sequence[int],
    server_url: str,
    split: str = "hash",
    engine: str = "staged",
    test_share: int = DEFAULT_TEST_SHARE,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """The quality benchmark on random subsamples of ``size`` messages, one per seed (one pipeline
    run each, every profile from its would-be set): per profile the mean and the worst precision and
    recall over the seeds, on how many seeds it promoted rules, and whether the profiles kept their
    order on every seed. Writes JSON: the summary and every seed's result."""
    data_path = Path(data_path)
    if not data_path.exists():
        raise FileNotFoundError(f"no such data file: {data_path}")
    if size < 1 or not seeds:
        raise ValueError("a sample needs a size of at least 1 and at least one seed")
    cache_dir = cache_dir or load_settings().home / "bench"
    work_dir = cache_dir / f"quality_sample_{os.getpid()}"
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        sample = work_dir / f"sample_{size}_{seed}.jsonl"
        written = sample_lines(data_path, sample, size, seed)
        result = run_quality_bench(
            sample, work_dir / f"sample_{size}_{seed}.json", split=split, server_url=server_url,
            one_run=True, engine=engine, cache_dir=cache_dir, test_share=test_share,
        )  # fmt: skip
        runs.append(
            {
                "seed": seed,
                "messages": written,
                "test_messages": result["test_messages"],
                "test_spam": result["test_spam"],
                "profiles": [
                    {k: p.get(k) for k in ("profile", "rules", "precision", "recall", "fpr", "tp", "fp")}
                    for p in result["profiles"]
                ],
                "drafted_union": result["drafted_union"],
                "baseline_lr_cv": {
                    k: result["profiles"][0].get(f"baseline_lr_cv_{k}") for k in ("precision", "recall")
                },
                "profile_order": profile_order(result["profiles"]),
            }
        )
    summary: dict[str, Any] = {}
    for name in PROFILES:
        rows = [p for r in runs for p in r["profiles"] if p["profile"] == name]
        precisions = [p["precision"] for p in rows if p["rules"] and p["precision"] is not None]
        recalls = [p["recall"] or 0.0 for p in rows]
        summary[name] = {
            "seeds": len(rows),
            "seeds_with_rules": sum(1 for p in rows if p["rules"]),
            "precision_mean": _mean(precisions),
            "precision_worst": min(precisions) if precisions else None,
            "recall_mean": _mean(recalls),
            "recall_worst": min(recalls) if recalls else None,
        }
    out = {
        "benchmark": "quality_sampled",
        "data": str(data_path),
        "sample_size": size,
        "seeds": list(seeds),
        "split": split,
        "engine": engine,
        "test_share": test_share,
        "summary": summary,
        "profile_order_holds_on_every_seed": all(r["profile_order"]["holds"] for r in runs),
        "runs": runs,
        "code": code_version(),
    }
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, sort_keys=True, default=str) + "\n")
    return out
