"""Time drafting alone on a database a `patas run` has built, and roll it back.

    cd <checkout> && .venv/bin/python <this repo>/benchmarks/time_drafting.py postgresql://.../db [--dump FILE]

Runs what the drafting step computes (``draft_with_stage2`` then ``write_drafts``, the counter-
examples included; as ``patas bench speed``'s "drafting" stage) with the checkout's own code
(the current directory's ``python_steps``), prints the seconds, and rolls back, so old and new code
can be timed back to back on the same data. ``--dump FILE`` writes the drafts (rule id, canonical
rule, pattern, counts, SQL, clauses) and the counter-example rows, in the order they were inserted,
to compare two revisions byte for byte (the golden check does not capture counter-examples).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

import psycopg

from python_steps.mining import drafting
from python_steps.settings import load_settings

READS_WINDOW_ONCE = importlib.util.find_spec("python_steps.mining.signal_matrix") is not None


def main(url: str, dump: str | None) -> None:
    cfg = drafting.DraftingConfig(languages=load_settings().languages)
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        extra = {}
        if READS_WINDOW_ONCE:
            from python_steps.mining import signal_matrix

            extra = {"signals": signal_matrix.load(conn)}
        drafts, _ = drafting.draft_with_stage2(conn, run_id="timing", max_rules=1000, config=cfg, **extra)
        drafted = time.perf_counter()
        written = drafting.write_drafts(conn, drafts, "timing", config=cfg, **extra)
        done = time.perf_counter()
        print(
            f"drafting {done - start:.2f} s (drafts {drafted - start:.2f} s, write and counter-examples "
            f"{done - drafted:.2f} s): {len(drafts)} drafts, {written['counterexamples']} counter-examples"
        )
        if dump:
            with open(dump, "w", encoding="utf-8") as f:
                for d in drafts:
                    print(d.rule_id, d.rule_canonical, d.pattern_id, d.spam_count, d.ham_count,
                          d.sql_expression, d.clauses, file=f)  # fmt: skip
                for row in conn.execute(
                    "select rule_id, example_kind, rank, message_id, shared_signal_count"
                    " from patas.rule_counterexamples order by ctid"
                ):
                    print(*row, file=f)
        conn.rollback()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[args.index("--dump") + 1] if "--dump" in args else None)
