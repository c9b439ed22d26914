"""The matcher's rule index picks exactly the rules the reference evaluator picks (no database)."""

from __future__ import annotations

import json
import random

from patas.service import matching
from python_steps import rules as rl
from python_steps.bench.generate import generate_corpus


def _rules_from(rows: list[dict]) -> list[matching.ActiveRule]:
    rng = random.Random(5)
    specs: list[dict] = []
    tokens = sorted({t for r in rows for t in matching.nz.tokens(r["normalized_text"])})
    for _ in range(150):
        n = rng.choice([1, 1, 2, 3])
        row = rng.choice(rows)
        toks = matching.nz.tokens(row["normalized_text"])
        if len(toks) >= n:
            i = rng.randrange(len(toks) - n + 1)
            specs.append({"kind": "text_phrase", "value": " ".join(toks[i : i + n])})
    specs += [{"kind": "text_contains", "value": rng.choice(tokens)[:3]} for _ in range(20)]
    specs += [{"kind": "text_regex", "value": "win+\\w*"}, {"kind": "text_regex", "value": "^(hi|hey)\\b"}]
    specs += [{"kind": "signature", "value": r["signature"]} for r in rng.sample(rows, 30)]
    for column, kind in (
        ("domains", "domain"),
        ("phones", "phone"),
        ("handles", "handle"),
        ("short_codes", "short_code"),
    ):
        values = sorted({v for r in rows for v in r[column]})
        specs += [{"kind": kind, "value": v} for v in values[:15]]
        if values:
            specs.append({"kind": kind, "op": "present"})
    specs += [
        {"kind": "phone", "op": "prefix", "value": "44"},
        {"kind": "domain", "op": "suffix", "value": "com"},
        {"kind": "meta", "key": "channel", "value": "sms"},
        {"all": [{"kind": "text_phrase", "value": "free"}, {"kind": "text_contains", "value": "call"}]},
        {"any": [{"kind": "text_phrase", "value": "prize"}, {"kind": "domain", "value": "bit.ly"}]},
        {
            "all": [
                {"kind": "text_phrase", "value": "you"},
                {"not": {"kind": "text_contains", "value": "win"}},
            ]
        },
    ]
    out = {}
    for spec in specs:
        try:
            rule = rl.parse_rule(spec)
        except rl.RuleError:
            continue
        rid = rl.rule_id(rule)
        out[rid] = matching.ActiveRule(rid, 1, "SAFE_AUTO", rl.describe(rule), rule)
    return [out[k] for k in sorted(out)]


def test_index_equals_the_reference_evaluator(tmp_path) -> None:
    path = tmp_path / "c.jsonl"
    generate_corpus(3000, 3, path)
    messages = [json.loads(line) for line in path.read_text().splitlines()]
    rows = [matching.message_row(m["text"], m.get("meta")) for m in messages]
    active = _rules_from(rows)
    assert len(active) > 150
    ruleset = matching.RuleSet("x", tuple(active), ())
    assert ruleset.index.by_phrase and ruleset.index.by_signature and ruleset.index.by_entity
    assert ruleset.index.generic
    got = matching.match_rows(ruleset, rows)
    hits = 0
    for row, found in zip(rows, got, strict=True):
        want = [r.rule_id for r in active if rl.evaluate(r.rule, row)]
        assert [r.rule_id for r in found] == want, row["normalized_text"]
        hits += len(want)
    assert hits > 1000
