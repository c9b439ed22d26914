"""The LLM prompt speaks the whole rule IR, and the price table reads (no database, no network)."""

from __future__ import annotations

import json

import pytest

from python_steps.mining import llm
from python_steps.rules import ir, parse_rule


def test_every_prompt_example_is_a_valid_rule_and_is_in_the_prompt():
    for rule, _note in llm.PROMPT_EXAMPLES:
        parse_rule(rule)
        assert json.dumps(rule) in llm.SYSTEM_PROMPT


def test_the_prompt_covers_every_leaf_kind_and_operator():
    shown = {
        (r["kind"], r.get("op", "match" if r["kind"] in ir.TEXT_KINDS else "eq"))
        for r, _ in llm.PROMPT_EXAMPLES
    }
    assert {k for k, _ in shown} == set(ir.LEAF_KINDS)
    present_kinds = {k for k, op in shown if op == "present"}
    for kind in ir.LEAF_KINDS:
        for op in ir._ops(kind):
            if op == "present" and kind not in present_kinds:  # one example, the other kinds named beside it
                assert kind in next(n for r, n in llm.PROMPT_EXAMPLES if r.get("op") == "present")
            else:
                assert (kind, op) in shown, (kind, op)


def test_prompt_version_and_limit():
    assert llm.PROMPT_VERSION == "p2"
    msgs = llm.build_messages({"cluster_id": "c"}, 4)
    assert "at most 4 precise rules" in msgs[0]["content"] and "{max_rules}" not in msgs[0]["content"]


def test_price_table_and_overrides(tmp_path):
    prices = llm.load_prices()
    assert prices["gpt-4o-mini"] == llm.Price(0.15, 0.60)
    assert llm.Price(0.15, 0.60).cost(1_000_000, 500_000) == pytest.approx(0.45)
    own = tmp_path / "prices.toml"
    own.write_text(
        '[models."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n[models."local-llama"]\ninput = 0\noutput = 0\n'
    )
    assert llm.price_for("gpt-4o-mini", own) == llm.Price(1.0, 2.0)
    assert llm.price_for("local-llama", own) == llm.Price(0.0, 0.0)
    assert llm.price_for("gpt-4o", own) == prices["gpt-4o"], "a file overrides per model"
    assert llm.price_for("gpt-4o-mini", None, output_per_1m=9.0) == llm.Price(0.15, 9.0)
    assert llm.price_for("unknown-model") is None
    with pytest.raises(ValueError, match="both"):
        llm.price_for("unknown-model", None, input_per_1m=1.0)
    own.write_text("[models.x]\ninput = 'cheap'\n")
    with pytest.raises(ValueError, match="price table"):
        llm.load_prices(own)


def test_config_from_settings(tmp_path):
    from python_steps.settings import load_settings

    s = load_settings({"PATAS_HOME": str(tmp_path), "PATAS_LLM_MODEL": "gpt-4o", "PATAS_LLM_BUDGET_USD": "0.25",
                       "PATAS_LLM_PRICE_INPUT_PER_1M": "3"})  # fmt: skip
    cfg = llm.LlmConfig.from_settings(s, privacy_mode="strict")
    assert cfg.privacy == "strict" and cfg.budget_usd == 0.25 and cfg.price == llm.Price(3.0, 10.0)
    with pytest.raises(ValueError, match="privacy"):
        llm.LlmConfig(None, None, privacy="open")
