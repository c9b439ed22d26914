"""A real HTTP server on 127.0.0.1 speaking the OpenAI embeddings API (``POST /v1/embeddings``).

Its vectors are a bag of words hashed into 64 dimensions: texts sharing words are similar, so
clustering on them means something. It records every request body; ``fail_next`` answers that many
requests with HTTP 500 first (to exercise retries), ``mode = "error"`` fails every request.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIMS = 64


def stub_vector(text: str) -> list[float]:
    v = [0.0] * DIMS
    for word in text.split():
        v[int(hashlib.sha1(word.encode()).hexdigest(), 16) % DIMS] += 1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


class EmbeddingsStub:
    def __init__(self):
        self.mode = "ok"
        self.fail_next = 0
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, **body})
                if outer.mode == "error" or outer.fail_next > 0:
                    outer.fail_next = max(0, outer.fail_next - 1)
                    data = b'{"error": {"message": "boom", "type": "server_error"}}'
                    self.send_response(500)
                else:
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    payload = {
                        "object": "list",
                        "model": body["model"],
                        "data": [
                            {"object": "embedding", "index": i, "embedding": stub_vector(t)}
                            for i, t in enumerate(inputs)
                        ],
                        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
                    }
                    data = json.dumps(payload).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def texts_sent(self) -> int:
        return sum(len(r["input"]) for r in self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (an endpoint that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
