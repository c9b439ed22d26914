"""Serve the tests' OpenAI-compatible embeddings stub on 127.0.0.1 until interrupted, for benchmarks
that measure the ``openai`` provider's calls and cache without a network (its vectors are a hashed
bag of words: a timing and caching aid, not a semantic model).

    .venv/bin/python benchmarks/embeddings_stub_server.py --port 18089 &
    PATAS_EMBEDDINGS_PROVIDER=openai PATAS_EMBEDDINGS_BASE_URL=http://127.0.0.1:18089/v1 \\
        PATAS_EMBEDDINGS_MODEL=stub PATAS_EMBEDDINGS_API_KEY=x patas bench speed --rows 1000000 ...
"""

from __future__ import annotations

import argparse
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from embeddings_stub import EmbeddingsStub


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    stub = EmbeddingsStub()
    handler = stub.server.RequestHandlerClass
    stub.close()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    print(f"embeddings stub on http://127.0.0.1:{args.port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print(
            f"requests served: {len(stub.requests)}, texts: {stub.texts_sent} ({time.strftime('%H:%M:%S')})"
        )


if __name__ == "__main__":
    main()
