"""``patas bench first-rule``: time to first rule, nightly runs replayed over a generated span.

A generated corpus with timestamps (``python_steps.bench.generate``, its campaigns and its small
campaigns of a few dozen messages) is cut into one file per day. On a fresh database, each night
ingests that day's file and runs the pipeline (the staged steps of ``patas bench speed``: the same
functions the Dagster assets call) with the chosen profile. After every night, a campaign counts as
*caught* once an active rule hits one of its messages; the benchmark records the night and how many
of the campaign's messages had been seen (ingested) by then: the **messages before the first rule**.
A campaign never caught by the last night is reported with ``caught: false``.

The campaign names come from ``meta.campaign``, a ground truth the pipeline never reads.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from patas.bench.harness import code_version, fresh_database
from patas.bench.speed import Stages, staged_run
from python_steps.bench.generate import generate_corpus
from python_steps.settings import load_settings

CAUGHT_SQL = """
select distinct e.meta ->> 'campaign'
from marts.rule_hits as h
inner join intermediate.int_messages_enriched as e on e.message_id = h.message_id
inner join patas.rule_lifecycle as l on l.rule_id = h.rule_id and l.status = 'active'
where e.meta ? 'campaign'
"""


def split_by_day(corpus: Path, out_dir: Path) -> list[tuple[str, Path, Counter]]:
    """One JSONL file per day (in order): (day, path, messages per campaign that day)."""
    days: dict[str, list[str]] = {}
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if line.strip():
            days.setdefault(json.loads(line)["timestamp"][:10], []).append(line)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for day in sorted(days):
        path = out_dir / f"day_{day}.jsonl"
        path.write_text("\n".join(days[day]) + "\n", encoding="utf-8")
        campaigns = Counter(
            json.loads(line)["meta"].get("campaign") for line in days[day] if '"campaign"' in line
        )
        campaigns.pop(None, None)
        result.append((day, path, campaigns))
    return result


def run_first_rule_bench(
    out_path: str | Path,
    *,
    rows: int,
    days: int,
    seed: int,
    server_url: str,
    profile: str = "conservative",
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Replay ``days`` nightly runs over a generated corpus; write and return the JSON result."""
    if rows < 1 or days < 2:
        raise ValueError("first-rule needs at least 1 message and 2 days")
    cache_dir = cache_dir or load_settings().home / "bench"
    work_dir = cache_dir / f"first_rule_{os.getpid()}"
    corpus = work_dir / "corpus.jsonl"
    work_dir.mkdir(parents=True, exist_ok=True)
    generate_corpus(rows, seed, corpus, days=days)
    nights = split_by_day(corpus, work_dir / "days")
    seen: Counter = Counter()
    total: Counter = Counter()
    for _, _, counts in nights:
        total.update(counts)
    first: dict[str, dict[str, Any]] = {}
    night_log: list[dict[str, Any]] = []
    with fresh_database(server_url, f"patas_bench_first_rule_{os.getpid()}") as url:
        for n, (day, path, counts) in enumerate(nights, start=1):
            seen.update(counts)
            out = staged_run(
                url, path, run_id=f"night_{n:03d}", work_dir=work_dir / "run", profile=profile,
                stages=Stages(), split="time",
            )  # fmt: skip
            with psycopg.connect(url) as conn:
                caught = {r[0] for r in conn.execute(CAUGHT_SQL)}
            for name in sorted(caught):
                if name not in first:
                    first[name] = {"night": n, "day": day, "messages_before_first_rule": seen[name]}
            night_log.append(
                {"night": n, "day": day, "rules_active": out.get("rules_active"), "caught": sorted(caught)}
            )
    campaigns = {}
    for name in sorted(total):
        first_seen = next(n for n, (_, _, c) in enumerate(nights, start=1) if c.get(name))
        got = first.get(name)
        campaigns[name] = {
            "messages": total[name],
            "first_seen_night": first_seen,
            "caught": got is not None,
            "first_rule_night": got["night"] if got else None,
            "nights_to_first_rule": (got["night"] - first_seen) if got else None,
            "messages_before_first_rule": got["messages_before_first_rule"] if got else None,
        }
    result = {
        "benchmark": "first_rule",
        "rows": rows,
        "days": days,
        "seed": seed,
        "profile": profile,
        "campaigns": campaigns,
        "caught": sum(1 for c in campaigns.values() if c["caught"]),
        "nights": night_log,
        "code": code_version(),
    }
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return result
