"""LLM drafting against a real HTTP server on 127.0.0.1 speaking the OpenAI chat API (no network)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from python_steps.mining.llm import LlmConfig, LlmDrafter, build_messages, parse_response

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
GOOD = {
    "rules": [
        {
            "rule": {"kind": "domain", "op": "eq", "value": "WIN-PRIZE.example"},
            "rationale": "campaign domain",
        },
        {"rule": {"kind": "text_phrase", "value": "claim your prize"}, "rationale": "campaign phrase"},
        {"rule": {"kind": "sql", "value": "1=1"}, "rationale": "invalid kind, must be dropped"},
    ]
}


class FakeOpenAI:
    """A tiny OpenAI-compatible server; `mode` picks the behaviour of the next requests."""

    def __init__(self):
        self.mode = "good"
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if outer.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "boom"}}')
                    return
                if outer.mode == "slow":
                    time.sleep(2.0)
                content = {"good": json.dumps(GOOD), "fenced": "```json\n" + json.dumps(GOOD) + "\n```"}.get(
                    outer.mode, "I think you should block prizes."
                )
                payload = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except BrokenPipeError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def llm():
    server = FakeOpenAI()
    yield server
    server.close()


def _cfg(llm, **kw) -> LlmConfig:
    return LlmConfig(base_url=llm.base_url, api_key="test", model="stub", **kw)


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
        # The prompt carries aggregated signals only.
        user = llm.requests[0]["messages"][1]["content"]
        assert json.loads(user) == SIGNALS
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
        out = LlmDrafter(conn, _cfg(llm, timeout_s=0.5), "r").draft([SIGNALS])
        assert out.proposals == []
        assert out.calls == {outcome: 1}
        assert _calls(conn) == [(outcome, 0)]
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
