"""LLM drafting inside whole runs of the graph (Dagster, dbt, a real Postgres) against a real HTTP
server on 127.0.0.1 speaking the OpenAI chat API: the run's privacy mode reaches the request, in
``strict`` no member's text leaves, the money budget stops the calls, and the run report and the
metrics textfile carry tokens, cost and the budget warning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest
from chat_stub import FakeOpenAI

from patas.bench.harness import fresh_database, patched_environ
from python_steps.bench.generate import generate_corpus
from python_steps.ingest.load import ingest_file
from python_steps.runspec import RunSpec
from python_steps.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def runs(server_url, tmp_path_factory):
    from patas.runner import run_pipeline

    tmp = tmp_path_factory.mktemp("llm_runs")
    corpus = tmp / "corpus.jsonl"
    generate_corpus(4000, 5, corpus)
    stub = FakeOpenAI()
    with fresh_database(server_url, f"patas_llmrun_{os.getpid()}") as url:
        env = {
            "DAGSTER_HOME": str(tmp / "dagster"),
            "PATAS_HOME": str(tmp / "home"),
            "PATAS_DATABASE_URL": url,
            "PATAS_LLM_ENABLED": "1",
            "PATAS_LLM_BASE_URL": stub.base_url,
            "PATAS_LLM_API_KEY": "k",
            "PATAS_LLM_MODEL": "stub-chat",  # not in the price table: priced by the overrides
            # 100 prompt + 50 completion tokens per call (the stub's usage): $0.20 per call
            "PATAS_LLM_PRICE_INPUT_PER_1M": "1000",
            "PATAS_LLM_PRICE_OUTPUT_PER_1M": "2000",
            "PATAS_LLM_BUDGET_USD": "0.3",
        }
        out: dict = {"url": url, "stub": stub, "home": tmp / "home"}
        try:
            with patched_environ(env):
                ingest_file(url, corpus)
                out["strict"] = run_pipeline(load_settings(), url, RunSpec(llm_privacy="strict"))
                out["strict_bodies"] = list(stub.requests)
                out["strict_prom"] = (tmp / "home" / "metrics" / "patas.prom").read_text()
                with psycopg.connect(url) as c:
                    out["member_texts"] = [
                        r[0]
                        for r in c.execute(
                            "select r.text from patas.semantic_cluster_members as m"
                            " join raw.messages as r using (message_id)"
                        )
                    ]
                    out["ham_texts"] = [
                        r[0] for r in c.execute("select text from raw.messages where not is_spam")
                    ]
                out["standard"] = run_pipeline(load_settings(), url, RunSpec())
                out["standard_bodies"] = stub.requests[len(out["strict_bodies"]) :]
            yield out
        finally:
            stub.close()


def _user(body: dict) -> dict:
    return json.loads(body["messages"][1]["content"])


def test_runs_succeed_and_call_the_llm(runs):
    assert runs["strict"]["success"] and runs["standard"]["success"], runs["strict"].get("failures")
    assert len(runs["member_texts"]) > 0, "stage 2 made clusters for the LLM to see"
    assert runs["strict_bodies"] and runs["standard_bodies"]


def test_strict_sends_no_message_text(runs):
    for body in runs["strict_bodies"]:
        user = _user(body)
        assert user["privacy"] == "strict" and "examples" not in user and "counter_examples" not in user
        sent = json.dumps(body, ensure_ascii=False)
        for text in runs["member_texts"] + runs["ham_texts"]:
            if len(text) >= 25:
                assert text not in sent


def test_standard_sends_redacted_examples(runs):
    users = [_user(b) for b in runs["standard_bodies"]]
    assert all(u["privacy"] == "standard" for u in users)
    assert any(u["examples"] for u in users)


def test_the_money_budget_stops_the_run_and_the_report_says_so(runs):
    strict = runs["strict"]
    llm = strict["llm"]
    # $0.20 after the first call; a second (about $0.20 more) would pass $0.30
    assert len(runs["strict_bodies"]) == 1 and llm["calls"]["ok"] == 1
    assert llm["cost_usd"] == pytest.approx(0.2) and llm["privacy"] == "strict"
    clusters = strict["stage2"]["clusters"]
    assert clusters >= 2, "the corpus gives stage 2 more than one cluster, so the budget has work to stop"
    assert llm["calls"]["over_budget"] == min(clusters, 20) - 1 and llm["budget_state"] == "reached"
    html = Path(strict["report_file"]).with_suffix(".html").read_text()
    assert "<h2>LLM drafting</h2>" in html and "LLM budget reached ($0.2000 of $0.3000)" in html
    assert "LLM budget reached" in Path(strict["report_file"]).read_text()


def test_the_metrics_textfile_has_the_runs_llm_tokens_and_cost(runs):
    prom = runs["strict_prom"]
    assert 'patas_last_run_llm_tokens{kind="prompt"} 100.0' in prom
    assert "patas_last_run_llm_cost_usd 0.2" in prom
    assert "patas_llm_cost_usd 0.2" in prom
