"""GET /metrics: Prometheus text that the prometheus_client parser reads, with figures that agree with
the warehouse, and match counters that move with /rules/match."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from svc_harness import Service

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _samples(service: Service) -> dict[tuple[str, tuple], float]:
    r = service.call("GET", "/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain"), r.headers
    text = r.raw.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_parse_and_agree_with_the_warehouse(service: Service, mined: dict) -> None:
    m = _samples(service)
    with psycopg.connect(service.url) as conn:
        statuses = dict(
            conn.execute("select status, count(*) from patas.rule_lifecycle group by 1").fetchall()
        )
        read, loaded, dup, quarantined = conn.execute(
            "select sum(read_count), sum(loaded_count), sum(duplicate_count), sum(quarantined_count)"
            " from raw.ingest_batches where status = 'done'"
        ).fetchone()
        precision = conn.execute(
            "select precision from marts.ruleset_evaluation where ruleset_name = 'active' and window_name = 'evaluation'"
        ).fetchone()[0]
    assert m[("patas_warehouse_up", ())] == 1.0
    for status in ("candidate", "shadow", "active", "deprecated"):
        assert m[("patas_rules", (("status", status),))] == statuses.get(status, 0)
    assert m[("patas_rules", (("status", "active"),))] > 0
    lines = {
        o: m[("patas_ingest_lines", (("outcome", o),))]
        for o in ("read", "loaded", "duplicate", "quarantined")
    }
    assert lines == {"read": read, "loaded": loaded, "duplicate": dup, "quarantined": quarantined}
    assert lines["read"] == lines["loaded"] + lines["duplicate"] + lines["quarantined"]
    assert abs(m[("patas_active_ruleset_precision", ())] - precision) < 1e-9
    assert m[("patas_last_run_success", ())] in (0.0, 1.0)
    assert m[("patas_last_run_duration_seconds", ())] > 0
    assert any(name == "patas_last_run_stage_seconds" for name, _ in m)
    assert ("patas_quality_gates", (("severity", "critical"), ("status", "failed"))) in m


def test_match_counters_count_requests_messages_and_hits(service: Service, mined: dict) -> None:
    before = _samples(service)
    r = service.call(
        "POST", "/api/v1/rules/match", role="reader", json_body={"messages": ["hello", "see you"]}
    )
    assert r.status == 200, r.body
    hits = sum(len(x["matched"]) for x in r.body["results"])
    after = _samples(service)
    assert after[("patas_match_requests_total", ())] == before.get(("patas_match_requests_total", ()), 0) + 1
    assert after[("patas_match_messages_total", ())] == before.get(("patas_match_messages_total", ()), 0) + 2
    assert after[("patas_match_hits_total", ())] == before.get(("patas_match_hits_total", ()), 0) + hits


def test_the_readme_metrics_command_as_a_user_types_it(service: Service, mined: dict) -> None:
    line = next(x for x in README.splitlines() if x.startswith("curl -s http://127.0.0.1:8000/metrics"))
    command = line.split("   #")[0].replace("http://127.0.0.1:8000", service.base)
    res = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert re.search(r'^patas_rules\{status="active"\} \d+\.0$', res.stdout, re.M), res.stdout
