"""Bench setup for /rules/match: top the drafted rules up to N with hand-written phrase rules (the
corpus's most frequent words that are not a rule yet) and set every rule active.

    python benchmarks/serve_bench_rules.py 1000 "$PATAS_HOME/demo/corpus_40000_7.jsonl"

Only for a latency benchmark on a throw-away warehouse (PATAS_DATABASE_URL): it bypasses promotion.
"""

from __future__ import annotations

import collections
import json
import os
import sys

import psycopg

from python_steps.lifecycle import manual
from python_steps.text import normalize as nz


def main(n: int, corpus: str) -> None:
    with psycopg.connect(os.environ["PATAS_DATABASE_URL"]) as conn:
        have = conn.execute("select count(*) from patas.rule_lifecycle").fetchone()[0]
        phrases = {r[0] for r in conn.execute("select rule_json->>'value' from patas.rule_drafts")}
        counts: collections.Counter[str] = collections.Counter()
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                counts.update(set(nz.tokens(nz.normalize_text(json.loads(line)["text"]) or "")))
        added = 0
        for word, _ in counts.most_common():
            if have + added >= n:
                break
            if word in phrases or len(word) < 3 or word.isdigit():
                continue
            manual.add_manual_rule(
                conn, {"kind": "text_phrase", "value": word}, reason="bench", actor="bench:setup"
            )
            conn.commit()
            added += 1
        conn.execute("update patas.rule_lifecycle set status = 'active'")
        conn.commit()
        active = conn.execute("select count(*) from patas.rule_lifecycle where status = 'active'").fetchone()[
            0
        ]
    print(f"{have} drafted + {added} added; active: {active}")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
