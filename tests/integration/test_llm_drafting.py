"""LLM drafting against a real HTTP server on 127.0.0.1 speaking the OpenAI chat API (no network)."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from chat_stub import FakeOpenAI

from python_steps.mining.llm import (
    PROMPT_VERSION,
    LlmConfig,
    LlmDrafter,
    Price,
    build_messages,
    parse_response,
)
from python_steps.publish import report

pytestmark = pytest.mark.integration

SIGNALS = {
    "cluster_id": "c_test",
    "message_count": 40,
    "top_entities": [{"kind": "domain", "value": "win-prize.example", "messages": 38}],
    "top_phrases": [
        {"phrase": "claim your prize", "cluster_messages": 35, "spam_count": 120, "ham_count": 0}
    ],
    "examples": ["Claim your prize at win-prize.example now <phone>"],
    "counter_examples": ["did you claim the parking refund?"],
}


@pytest.fixture()
def llm():
    server = FakeOpenAI()
    yield server
    server.close()


def _cfg(llm, **kw) -> LlmConfig:
    return LlmConfig(base_url=llm.base_url, api_key="test", model="stub", **{"backoff_s": 0.01, **kw})


def _calls(conn):
    return conn.execute("select outcome, rules_valid from patas.llm_calls order by call_id").fetchall()


def test_valid_rules_are_kept_invalid_dropped_and_cached(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm), "run1").draft([SIGNALS])
        assert [p.rule_json for p in out.proposals] == [
            {"kind": "domain", "op": "eq", "value": "win-prize.example"},
            {"kind": "text_phrase", "value": "claim your prize"},
        ]
        assert out.tokens == 150 and len(llm.requests) == 1
        # The prompt carries aggregated signals only (the standard privacy mode: redacted examples).
        user = json.loads(llm.requests[0]["messages"][1]["content"])
        assert user == {**SIGNALS, "privacy": "standard"}
        again = LlmDrafter(conn, _cfg(llm), "run2").draft([SIGNALS])
        assert len(llm.requests) == 1, "a cached prompt must not be sent again"
        assert [p.rule_json for p in again.proposals] == [p.rule_json for p in out.proposals]
        assert again.calls == {"cached": 1}
        assert _calls(conn) == [("ok", 2), ("cached", 2)]


def test_code_fences_are_tolerated(llm, fresh_db):
    llm.mode = "fenced"
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm), "r").draft([SIGNALS])
    assert len(out.proposals) == 2


@pytest.mark.parametrize(
    ("mode", "outcome"), [("error", "error"), ("prose", "malformed"), ("slow", "timeout")]
)
def test_failures_degrade_and_are_recorded(llm, fresh_db, mode, outcome):
    llm.mode = mode
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm, timeout_s=0.5, max_retries=1), "r").draft([SIGNALS])
        assert out.proposals == []
        assert out.calls == {outcome: 1}
        assert _calls(conn) == [(outcome, 0)]
        # transient failures (5xx, timeouts) are retried once here; an answer that is not JSON is not
        assert len(llm.requests) == (1 if mode == "prose" else 2)
        assert conn.execute("select count(*) from patas.llm_cache").fetchone()[0] == 0


def test_budget_stops_further_calls(llm, fresh_db):
    second = dict(SIGNALS, cluster_id="c_other")
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm, budget_tokens=100), "r").draft([SIGNALS, second])
        assert len(llm.requests) == 1
        assert out.calls == {"ok": 1, "over_budget": 1}


def test_parse_response_rejects_non_objects():
    with pytest.raises(ValueError, match="rules"):
        parse_response("[1, 2]", "c", 3)
    with pytest.raises(ValueError, match="not JSON"):
        parse_response("nope", "c", 3)


def test_prompt_names_the_rule_limit():
    msgs = build_messages(SIGNALS, 2)
    assert "at most 2 precise rules" in msgs[0]["content"]


# -- privacy: what leaves, captured at the server ---------------------------------------------------
OWN_PHONE = "447700900123"
PII_SIGNALS = {
    "cluster_id": "c_pii",
    "message_count": 40,
    "top_entities": [
        {"kind": "domain", "value": "win-prize.example", "messages": 38},
        {"kind": "phone", "value": OWN_PHONE, "messages": 31},
        {"kind": "phone", "value": "447911123456", "messages": 1},  # somebody's number
        {"kind": "email", "value": "john.doe@mailbox.example", "messages": 1},
        {"kind": "domain", "value": "mailbox.example", "messages": 1},
    ],
    "top_phrases": [
        {"phrase": "claim your prize", "cluster_messages": 35, "spam_count": 120, "ham_count": 0}
    ],
    "examples": [
        "Claim your prize at win-prize.example! Call +44 7700 900123 (not +44 7911 123456)",
        "Winner: reply with card 4111 1111 1111 1111 and IBAN GB82 WEST 1234 5698 7654 32 to john.doe@mailbox.example",
    ],
    "counter_examples": ["Mary here, did you claim the parking refund? Ring me on 07911 654321"],
}
LEAKS = ("4111", "GB82", "WEST", "john.doe", "7911", "123456", "654321")


def _sent(llm) -> str:
    """Everything the server received, decoded (JSON escapes undone)."""
    return "\n".join(json.dumps(json.loads(b), ensure_ascii=False) for b in llm.raw_bodies)


def test_standard_redacts_pii_and_keeps_the_patterns_own_entities(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        LlmDrafter(conn, _cfg(llm, privacy="standard"), "r").draft([PII_SIGNALS])
    assert len(llm.requests) == 1
    sent = _sent(llm)
    for leak in LEAKS:
        assert leak not in sent, f"{leak!r} reached the LLM"
    user = json.loads(llm.requests[0]["messages"][1]["content"])
    assert user["privacy"] == "standard"
    assert user["examples"] == [
        "Claim your prize at win-prize.example! Call +44 7700 900123 (not <phone>)",
        "Winner: reply with card <card> and IBAN <iban> to <email>",
    ]
    # names are not detected: standard mode redacts numbers and addresses, not people's names
    assert user["counter_examples"] == ["Mary here, did you claim the parking refund? Ring me on <phone>"]
    kept = {(e["kind"], e["value"]) for e in user["top_entities"]}
    assert ("phone", OWN_PHONE) in kept and ("domain", "win-prize.example") in kept
    assert user["redacted_entities"] == {"email": 1, "phone": 1}


def test_strict_sends_no_example_text_no_foreign_entity_no_ham(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        LlmDrafter(conn, _cfg(llm, privacy="strict"), "r").draft([PII_SIGNALS])
    sent = _sent(llm)
    for text in PII_SIGNALS["examples"] + PII_SIGNALS["counter_examples"]:
        for fragment in (text[:20], text[-20:]):
            assert fragment not in sent, f"example text {fragment!r} reached the LLM"
    for leak in (*LEAKS, "mailbox.example", "parking", "Winner", "Mary"):
        assert leak not in sent, f"{leak!r} reached the LLM"
    user = json.loads(llm.requests[0]["messages"][1]["content"])
    assert "examples" not in user and "counter_examples" not in user
    assert user["top_entities"] == [
        {"kind": "domain", "value": "win-prize.example", "messages": 38},
        {"kind": "phone", "value": OWN_PHONE, "messages": 31},
    ]
    assert user["top_phrases"][0]["phrase"] == "claim your prize"


def test_the_privacy_mode_is_part_of_the_cached_prompt(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        LlmDrafter(conn, _cfg(llm, privacy="standard"), "r1").draft([PII_SIGNALS])
        LlmDrafter(conn, _cfg(llm, privacy="strict"), "r2").draft([PII_SIGNALS])
        again = LlmDrafter(conn, _cfg(llm, privacy="strict"), "r3").draft([PII_SIGNALS])
    assert len(llm.requests) == 2 and again.calls == {"cached": 1}
    assert PROMPT_VERSION == "p2"


# -- retries, money, budget ----------------------------------------------------------------------
def test_transient_failures_are_retried_with_backoff(llm, fresh_db):
    llm.fail_first = 2
    with psycopg.connect(fresh_db) as conn:
        t0 = time.monotonic()
        out = LlmDrafter(conn, _cfg(llm, max_retries=2, backoff_s=0.2), "r").draft([SIGNALS])
        waited = time.monotonic() - t0
        assert out.calls == {"ok": 1} and out.retries == 2 and len(out.proposals) == 2
        assert conn.execute("select outcome, attempts from patas.llm_calls").fetchall() == [("ok", 3)]
    assert len(llm.requests) == 3
    assert waited >= 0.2 + 0.4, "backoff: 0.2 s, then twice as long"


def test_rate_limited_after_the_retries_degrades(llm, fresh_db):
    llm.mode = "rate_limited"
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm, max_retries=2), "r").draft([SIGNALS])
        assert out.calls == {"error": 1} and out.proposals == []
        assert conn.execute("select attempts from patas.llm_calls").fetchone()[0] == 3
    assert len(llm.requests) == 3


# 100 prompt tokens at $1,000 / 1M and 50 completion tokens at $2,000 / 1M: $0.20 per call.
PRICE = Price(input_per_1m=1000.0, output_per_1m=2000.0)


def _clusters(n: int) -> list[dict]:
    return [dict(SIGNALS, cluster_id=f"c{i}") for i in range(n)]


def test_money_budget_stops_calls_and_is_recorded(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm, price=PRICE, budget_usd=0.5), "run_b").draft(_clusters(5))
        # $0.20 after the first call; after the second $0.40, and a third (about $0.20) would pass $0.50
        assert len(llm.requests) == 2
        assert out.calls == {"ok": 2, "over_budget": 3}
        assert out.cost_usd == pytest.approx(0.4) and out.budget_state == "reached"
        rows = conn.execute(
            "select outcome, cost_usd from patas.llm_calls where run_id = 'run_b' order by call_id"
        ).fetchall()
        assert [r[0] for r in rows] == ["ok", "ok", "over_budget", "over_budget", "over_budget"]
        assert sum(r[1] for r in rows) == pytest.approx(0.4)
        summary = report.build_summary(conn, "run_b")
    llm_rec = summary["llm"]
    assert llm_rec["budget_state"] == "reached" and llm_rec["cost_usd"] == pytest.approx(0.4)
    assert llm_rec["budget_used"] == pytest.approx(0.8) and llm_rec["privacy"] == "standard"
    text = report.render_summary(summary)
    assert "LLM budget reached ($0.4000 of $0.5000): 3 cluster(s) were not sent" in text
    assert "$0.4000 of $0.50 budget" in text


def test_usage_drives_the_budget(llm, fresh_db):
    """The stub reports a large usage: one call spends the whole budget, nothing more is sent."""
    llm.usage = {"prompt_tokens": 400, "completion_tokens": 100, "total_tokens": 500}  # $0.60
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm, price=PRICE, budget_usd=0.5), "r").draft(_clusters(3))
    assert len(llm.requests) == 1 and out.calls == {"ok": 1, "over_budget": 2}
    assert out.prompt_tokens == 400 and out.completion_tokens == 100


def test_near_the_budget_warns_without_stopping(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm, price=PRICE, budget_usd=0.45), "run_n").draft(_clusters(2))
        assert len(llm.requests) == 2 and out.budget_state == "near"
        summary = report.build_summary(conn, "run_n")
    assert summary["llm"]["budget_state"] == "near"
    assert "warning:         LLM spend near the run budget ($0.4000 of $0.4500)" in report.render_summary(
        summary
    )


def test_an_unpriced_model_is_said_so(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        out = LlmDrafter(conn, _cfg(llm, price=None, budget_usd=0.01), "r").draft(_clusters(2))
    assert len(llm.requests) == 2, "no price: the money budget cannot stop calls (tokens still can)"
    assert out.budget_state == "ok" and "has no price" in out.warnings[0]


def test_warehouse_metrics_count_llm_tokens_and_cost(llm, fresh_db):
    from patas.service.metrics import warehouse_metrics

    with psycopg.connect(fresh_db) as conn:
        LlmDrafter(conn, _cfg(llm, price=PRICE, budget_usd=5.0), "r1").draft(_clusters(2))
        families = {f.name: f for f in warehouse_metrics(conn)}
    assert families["patas_llm_cost_usd"].samples[0].value == pytest.approx(0.4)
    tokens = {s.labels["kind"]: s.value for s in families["patas_llm_tokens"].samples}
    assert tokens == {"prompt": 200, "completion": 100}


def test_a_run_served_from_the_cache_spends_nothing_and_warns_nothing(llm, fresh_db):
    with psycopg.connect(fresh_db) as conn:
        LlmDrafter(conn, _cfg(llm, price=PRICE, budget_usd=0.45), "r1").draft(_clusters(2))
        again = LlmDrafter(conn, _cfg(llm, price=PRICE, budget_usd=0.45), "r2").draft(_clusters(2))
    assert again.calls == {"cached": 2} and again.cost_usd == 0 and again.budget_state == "ok"
    assert again.warnings == [] and len(llm.requests) == 2
