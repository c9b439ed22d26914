"""A tiny server on 127.0.0.1 speaking the OpenAI chat-completions API, for LLM drafting tests: it
records every request body and answers with typed rules (or fails, slowly, or with prose)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
        self.fail_first = 0  # answer 500 to this many requests first (then `mode`)
        self.usage = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
        self.requests: list[dict] = []
        self.raw_bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                outer.raw_bodies.append(raw)
                body = json.loads(raw)
                outer.requests.append(body)
                if outer.fail_first > 0 or outer.mode in ("error", "rate_limited"):
                    outer.fail_first -= 1
                    self.send_response(429 if outer.mode == "rate_limited" else 500)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "boom"}}')
                    return
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
                    "usage": outer.usage,
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
