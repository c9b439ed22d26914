"""Helpers of the reliability suite: real ``patas`` processes, kill points read from the run log, the
process tree, a fingerprint of the warehouse state and the figures table the suite prints.

Not a test module (no ``test_`` prefix); the suite's modules import it from this folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

PATAS = str(Path(sys.executable).parent / "patas")
REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / "target" / "reliability_figures.jsonl"  # the suite's table, also printed per test


# -- processes -----------------------------------------------------------------------------------
@dataclass
class Patas:
    """One user's shell: the warehouse URL, PATAS_HOME and the environment every command gets."""

    url: str
    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "PATAS_HOME": str(self.home), "DAGSTER_HOME": str(self.home / "dagster")}
        env.pop("PATAS_PROFILE", None)
        if self.url:
            env["PATAS_DATABASE_URL"] = self.url
        else:
            env.pop("PATAS_DATABASE_URL", None)
        return {**env, **self.extra_env}

    def __call__(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [PATAS, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )

    def start(self, *args: str) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [PATAS, *args],
            env=self.env,
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parent[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> float | None:
    """Seconds until ``predicate()`` held, or None when it did not within ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def run_log(home: Path, before: set[Path]) -> Path | None:
    new = sorted(set((home / "logs").glob("run-*.log")) - before, key=lambda p: p.stat().st_mtime)
    return new[-1] if new else None


# Kill points, read from the run's own log (Dagster's step events and dbt's lines in it).
DBT_MODEL_OK = re.compile(r"^(?:\d\d:\d\d:\d\d\s+)?\d+ of \d+ OK ", re.M)  # dbt's text lines: time, message
STAGE_1_STEP = 'Started execution of step "patas_dbt_models"'


def _stage_1_models_done(log: str) -> int:
    """dbt models finished since the stage-1 step started (0 before it starts)."""
    return len(DBT_MODEL_OK.findall(log.split(STAGE_1_STEP, 1)[1])) if STAGE_1_STEP in log else 0


def _started(step: str) -> Callable[[str], bool]:
    return lambda log: f'Started execution of step "{step}"' in log


# In the order a run reaches them: each kill is the next run on the same warehouse.
KILL_POINTS: dict[str, Callable[[str], bool]] = {
    # dbt is building stage 1: its first model done
    "stage 1, first model": lambda log: _stage_1_models_done(log) >= 1,
    # dbt is building stage 1: several models done, more to come
    "stage 1": lambda log: (
        'Started execution of step "patas_dbt_models"' in log and len(DBT_MODEL_OK.findall(log)) >= 6
    ),
    "stage 2": _started("patas__semantic_clusters"),
    "drafting": _started("rule_drafts"),
    # the drafts are written; their blocking safety check runs
    "drafts written": _started("patas__rule_drafts_rule_drafts_are_safe_sql"),
    "shadow evaluation": _started("patas_dbt_models_3"),
    "during lifecycle": _started("rule_lifecycle"),
    "right after lifecycle": lambda log: 'Finished execution of step "rule_lifecycle"' in log,
}


@dataclass
class Killed:
    point: str
    reached: bool
    seconds_into_run: float
    steps_started: list[str]
    children_before: int
    children_left_after_s: float | None  # seconds from the kill until no child was left (None: never)
    dbt_in_process: bool  # the killed process itself was running dbt (in-process, no child)
    backends_left_after_s: float | None  # seconds from the kill until no session of the run was left
    lock_free_after_s: float | None  # seconds from the kill until the run lock could be taken


def run_and_kill(patas: Patas, point: str, timeout: float = 600) -> Killed:
    """Start ``patas run``, SIGKILL it when its log shows ``point``; report what was seen."""
    before = set((patas.home / "logs").glob("run-*.log"))
    t0 = time.monotonic()
    proc = patas.start("run")
    log_text = ""

    def reached() -> bool:
        nonlocal log_text
        path = run_log(patas.home, before)
        log_text = path.read_text(errors="replace") if path else ""
        return KILL_POINTS[point](log_text) or proc.poll() is not None

    wait_until(reached, timeout)
    kids = children_of(proc.pid)
    hit = KILL_POINTS[point](log_text) and proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    seconds = killed_at - t0
    gone = wait_until(lambda: not any(alive(k) for k in kids), 30)  # measured from the kill
    backends = wait_until(lambda: not other_backends(patas.url), 60)
    lock_free = wait_until(lambda: not run_lock_held(patas.url), 30)
    lock_free = None if lock_free is None else time.monotonic() - killed_at
    proc.communicate()
    steps = re.findall(r'Started execution of step "([^"]+)"', log_text)
    in_process = bool(re.search(r"dbt \(in-process\): build", log_text))
    return Killed(point, hit, round(seconds, 1), steps, len(kids), gone, in_process, backends, lock_free)


def other_backends(url: str) -> int:
    """Sessions on the run's database other than this one (a killed run's dbt would hold one)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchone()[0]


def run_lock_held(url: str) -> bool:
    from python_steps.warehouse import RUN_LOCK_KEY

    with psycopg.connect(url, autocommit=True) as conn:
        got = conn.execute("select pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()[0]
        if got:
            conn.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))
        return not got


# -- the warehouse state -------------------------------------------------------------------------
# Every part is free of run ids and wall-clock times, which differ between equal runs (the
# promotion metrics carry the promoting run id: dropped).
STATE_QUERIES = {
    "batches": """select source_format, status, read_count, loaded_count, duplicate_count,
                         quarantined_count from raw.ingest_batches where status = 'done' order by batch_id""",
    "messages": """select count(*), count(distinct external_id),
                          md5(string_agg(external_id || ':' || md5(text), ',' order by external_id))
                   from raw.messages""",
    "quarantine": """select line_number, reason_code from raw.ingest_quarantine q
                     join raw.ingest_batches b using (batch_id) where b.status = 'done'
                     order by line_number, reason_code""",
    "drafts": """select rule_id, version, rule_canonical, sql_expression, regex, origin, pattern_id
                 from patas.rule_drafts order by rule_id, version""",
    "lifecycle": """select rule_id, version, status, is_pinned, tier, (promoted_metrics - 'run_id')::text, status_reason
                    from patas.rule_lifecycle order by rule_id""",
    "latest metrics": """select distinct on (rule_id, window_name) rule_id, window_name, status, tier,
                                hit_count, spam_hit_count, ham_hit_count, unlabelled_hit_count,
                                unique_spam_hit_count, precision, recall, false_positive_rate
                         from patas.rule_metrics_history order by rule_id, window_name, run_seq desc""",
    "evidence": """select rule_id, rule_kind, evidence_folds, evidence_folds_used, evidence_spam_hits,
                          evidence_ham_hits, evidence_ham_total, evidence_precision, posterior_mean,
                          posterior_lower_bound, tier from patas.rule_evidence order by rule_id""",
    "audit": """select rule_id, version, from_status, to_status, reason, metrics::text, actor, count(*)
                from patas.rule_audit group by 1, 2, 3, 4, 5, 6, 7 order by 1, 2, 3, 4, 5, 6, 7""",
    "active_rules": "select rule_id, rule_version, tier, sql_expression from marts.active_rules order by 1",
    "rulesets": "select ruleset_name, rule_id from patas.ruleset_members order by 1, 2",
}


def fingerprint(url: str) -> dict[str, str]:
    out = {}
    with psycopg.connect(url) as conn:
        for name, query in STATE_QUERIES.items():
            rows = conn.execute(query).fetchall()
            out[name] = f"{len(rows)} rows {hashlib.sha256(repr(rows).encode()).hexdigest()[:16]}"
    return out


def consistency_problems(url: str, home: Path) -> list[str]:
    """What is wrong with the state, in words (empty when consistent): every line accounted for,
    no batch running, and active_rules and the three export files equal to the lifecycle's active set."""
    problems = []
    with psycopg.connect(url) as conn:
        running = conn.execute("select count(*) from raw.ingest_batches where status = 'running'").fetchone()[
            0
        ]
        if running:
            problems.append(f"{running} batch(es) left running")
        unbalanced = conn.execute(
            """select batch_id from raw.ingest_batches where status = 'done'
               and read_count <> loaded_count + duplicate_count + quarantined_count"""
        ).fetchall()
        if unbalanced:
            problems.append(f"batches where read <> loaded + duplicate + quarantined: {unbalanced}")
        lifecycle = {
            (r, v, t)
            for r, v, t in conn.execute(
                "select rule_id, version, tier from patas.rule_lifecycle where status = 'active'"
            ).fetchall()
        }
        mart = set(conn.execute("select rule_id, rule_version, tier from marts.active_rules").fetchall())
    if mart != lifecycle:
        problems.append(f"marts.active_rules differs from the lifecycle: {sorted(mart ^ lifecycle)[:5]}")
    exports = home / "exports"
    ids = {r for r, _, _ in lifecycle}
    as_json = json.loads((exports / "rules.json").read_text())
    json_ids = {(r["id"], r["version"], r["tier"]) for r in as_json["rules"]}
    if json_ids != lifecycle:
        problems.append(f"rules.json differs from the lifecycle: {sorted(json_ids ^ lifecycle)[:5]}")
    sql_ids = set(re.findall(r"^-- rule: (r_\w+) v\d+ ", (exports / "rules.sql").read_text(), re.M))
    if sql_ids != ids:
        problems.append(f"rules.sql differs from the lifecycle: {sorted(sql_ids ^ ids)[:5]}")
    rol = json.loads((exports / "rules.rol.json").read_text())
    rol_ids = {r["id"] for r in rol["rules"]} | {r["id"] for r in rol.get("skipped", [])}
    if rol_ids != ids:
        problems.append(f"rules.rol.json differs from the lifecycle: {sorted(rol_ids ^ ids)[:5]}")
    return problems


def input_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


# -- figures -------------------------------------------------------------------------------------
def record_figure(scenario: str, **values: object) -> None:
    """One row of the suite's figures table: printed (``pytest -s`` shows it) and appended to
    target/reliability_figures.jsonl, which docs/reliability.md quotes."""
    row = {"scenario": scenario, **values}
    print("FIGURE " + json.dumps(row, sort_keys=True, default=str))
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True, default=str) + "\n")


# -- a stand-in LLM ------------------------------------------------------------------------------
class StubLlm:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that proposes one phrase rule per cluster and
    records the Authorization headers it receives (the key reached the one place it belongs)."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.authorizations.append(self.headers.get("Authorization", ""))
                content = json.dumps(
                    {"rules": [{"rule": {"kind": "text_phrase", "value": "claim now"}, "rationale": "x"}]}
                )
                data = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "m"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubLlm:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
