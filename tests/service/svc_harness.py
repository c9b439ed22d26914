"""HTTP and CLI helpers for the service tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PATAS = str(Path(sys.executable).parent / "patas")
MAX_BODY_MB = 2  # small, so a 413 for an oversized body is cheap to provoke


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes


@dataclass
class Service:
    base: str
    url: str
    home: Path
    env: dict[str, str]
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        role: str | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> Reply:
        hdrs = dict(headers or {})
        token = key if key is not None else (self.keys[role] if role else None)
        if token is not None:
            hdrs["X-API-Key"] = token
        if json_body is not None:
            data = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw, status, rh = resp.read(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as err:
            raw, status, rh = err.read(), err.code, dict(err.headers)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return Reply(status, body, rh, raw)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([PATAS, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if check and res.returncode != 0:
            raise AssertionError(f"patas {' '.join(args)} failed ({res.returncode}): {res.stderr}")
        return res

    def wait_run(self, run_id: str, timeout: float = 900) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.call("GET", f"/api/v1/runs/{run_id}", role="reader")
            assert r.status == 200, r.body
            if r.body["status"] in ("success", "failure"):
                return r.body
            time.sleep(1)
        raise AssertionError(f"run {run_id} did not finish in {timeout} s")
