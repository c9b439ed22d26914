"""The HTTP API over real HTTP: every endpoint, every role boundary, every error status.

The server is a real ``patas serve`` process (tests/service/conftest.py); the rules come from a real
pipeline run started through ``POST /patterns/mine`` on a generated corpus ingested through the API.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from svc_harness import MAX_BODY_MB, PATAS, Service

pytestmark = pytest.mark.integration

API = "/api/v1"

# (method, path, minimum role, a body the endpoint accepts or rejects only after the role check)
ENDPOINTS = [
    ("GET", f"{API}/runs/00000000-0000-0000-0000-000000000000", "reader", None),
    ("GET", f"{API}/patterns", "reader", None),
    ("GET", f"{API}/rules", "reader", None),
    ("GET", f"{API}/rules/r_0", "reader", None),
    ("GET", f"{API}/rules/export?backend=rol", "reader", None),
    ("GET", "/export-rules", "reader", None),
    ("POST", f"{API}/rules/match", "reader", {"text": "hello"}),
    ("POST", f"{API}/patterns/match", "reader", {"text": "hello"}),
    ("POST", f"{API}/messages/ingest", "operator", {"messages": [{"text": "role probe"}]}),
    ("POST", f"{API}/patterns/mine", "operator", {}),
    ("POST", f"{API}/rules/eval-shadow", "operator", {}),
    ("POST", f"{API}/rules/promote", "operator", {"dry_run": True}),
    ("POST", f"{API}/analyze", "operator", {"messages": [{"text": "role probe"}]}),
    ("POST", f"{API}/feedback", "operator", {"id": "no-such-message", "verdict": "ham"}),
    ("POST", f"{API}/rules", "admin", {"rule": {"kind": "text_contains", "value": "x"}, "reason": "r"}),
    ("POST", f"{API}/rules/r_0/promote", "admin", {"reason": "r"}),
    ("POST", f"{API}/rules/r_0/deprecate", "admin", {"reason": "r"}),
    ("POST", f"{API}/rules/r_0/pin", "admin", {"reason": "r"}),
    ("GET", f"{API}/rules/review", "reader", None),
    ("POST", f"{API}/rules/r_0/approve", "admin", {"reason": "r"}),
    ("POST", f"{API}/rules/r_0/reject", "admin", {"reason": "r"}),
    ("GET", f"{API}/keys", "admin", None),
    ("POST", f"{API}/keys", "admin", {"name": "probe", "role": "reader"}),
    ("DELETE", f"{API}/keys/nobody", "admin", None),
]
LOWER = {"reader": [], "operator": ["reader"], "admin": ["reader", "operator"]}


def _active(service: Service) -> list[dict]:
    r = service.call("GET", f"{API}/rules?status=active&limit=1000&include_evaluation=true", role="reader")
    assert r.status == 200, r.body
    return r.body["rules"]


# ---- service, docs, access ---------------------------------------------------------------------


def test_health_needs_no_key_and_reports_warehouse_run_and_versions(service: Service, mined: dict) -> None:
    r = service.call("GET", f"{API}/health")
    assert r.status == 200, r.body
    assert r.body["status"] == "ok"
    assert r.body["warehouse"]["reachable"] is True
    assert r.body["last_run"]["run_id"] == mined["run_id"]
    assert r.body["last_run"]["status"] == "success"
    assert r.body["versions"]["patas"] and r.body["versions"]["normalizer"]
    assert r.body["active_rules"] == len(_active(service))


def test_openapi_docs_are_served(service: Service) -> None:
    assert service.call("GET", "/docs").status == 200
    spec = service.call("GET", "/openapi.json").body
    paths = set(spec["paths"])
    for path in ("/health", "/messages/ingest", "/patterns/mine", "/runs/{run_id}", "/patterns", "/rules",
                 "/rules/{rule_id}", "/rules/{rule_id}/promote", "/rules/{rule_id}/deprecate",
                 "/rules/{rule_id}/pin", "/rules/eval-shadow", "/rules/promote", "/rules/export",
                 "/analyze", "/rules/match", "/rules/review", "/rules/{rule_id}/approve",
                 "/rules/{rule_id}/reject"):  # fmt: skip
        assert API + path in paths, path
    assert "/export-rules" in paths


@pytest.mark.parametrize(
    ("method", "path", "role", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_role_boundaries(service: Service, method: str, path: str, role: str, body: object) -> None:
    missing = service.call(method, path, json_body=body)
    assert missing.status == 401, missing.body
    assert missing.body == {"error": "unauthorized", "detail": "missing X-API-Key header"}
    wrong = service.call(method, path, key="patas_not-a-real-key", json_body=body)
    assert wrong.status == 401 and wrong.body["error"] == "unauthorized"
    for lower in LOWER[role]:
        r = service.call(method, path, role=lower, json_body=body)
        assert r.status == 403, (lower, r.body)
        assert r.body["error"] == "forbidden" and role in r.body["detail"]


def test_review_queue_and_approve_over_http(service: Service, mined: dict) -> None:
    queue = service.call("GET", f"{API}/rules/review", role="reader")
    assert queue.status == 200, queue.body
    assert queue.body["count"] == len(queue.body["rules"])
    assert all(r["tier"] == "REVIEW_ONLY" for r in queue.body["rules"])
    if not queue.body["rules"]:
        pytest.fail("the service corpus leaves no REVIEW_ONLY rule to review")
    rid = queue.body["rules"][0]["rule_id"]
    assert queue.body["rules"][0]["posterior_mean"] is not None
    ok = service.call(
        "POST", f"{API}/rules/{rid}/approve", role="admin", json_body={"reason": "looked at it"}
    )
    assert ok.status == 200, ok.body
    assert ok.body["status"] == "active" and ok.body["reason"] == "review_approved: looked at it"
    again = service.call("POST", f"{API}/rules/{rid}/approve", role="admin", json_body={"reason": "twice"})
    assert again.status == 409 and "not waiting for review" in again.body["detail"]
    assert (
        service.call("POST", f"{API}/rules/r_nope/reject", role="admin", json_body={"reason": "x"}).status
        == 404
    )
    back = service.call("POST", f"{API}/rules/{rid}/deprecate", role="admin", json_body={"reason": "undo"})
    assert back.status == 200, back.body


def test_revoked_key_is_refused_and_tokens_are_stored_hashed(service: Service) -> None:
    created = service.call(
        "POST", f"{API}/keys", role="admin", json_body={"name": "short-lived", "role": "reader"}
    )
    assert created.status == 201, created.body
    token = created.body["token"]
    assert service.call("GET", f"{API}/rules?limit=1", key=token).status == 200
    listed = service.call("GET", f"{API}/keys", role="admin").body["keys"]
    assert "short-lived" in {k["name"] for k in listed}
    assert token not in json.dumps(listed)
    with psycopg.connect(service.url) as conn:
        stored = conn.execute("select * from patas.api_keys").fetchall()
    assert token not in repr(stored)
    dup = service.call(
        "POST", f"{API}/keys", role="admin", json_body={"name": "short-lived", "role": "admin"}
    )
    assert dup.status == 409
    assert service.call("DELETE", f"{API}/keys/short-lived", role="admin").status == 200
    r = service.call("GET", f"{API}/rules?limit=1", key=token)
    assert r.status == 401 and r.body["detail"] == "unknown or revoked API key"
    assert service.call("DELETE", f"{API}/keys/short-lived", role="admin").status == 404
    bad_role = service.call("POST", f"{API}/keys", role="admin", json_body={"name": "x", "role": "root"})
    assert bad_role.status == 422 and bad_role.body["fields"][0]["field"] == "role"


def test_apikey_cli_lists_and_revokes_without_showing_tokens(service: Service) -> None:
    token = service.cli("apikey", "create", "cli-made", "--role", "operator").stdout.strip()
    assert token.startswith("patas_")
    listing = service.cli("apikey", "list").stdout
    assert "cli-made" in listing and "operator" in listing and token not in listing
    assert service.call("GET", f"{API}/rules?limit=1", key=token).status == 200
    service.cli("apikey", "revoke", "cli-made")
    assert service.call("GET", f"{API}/rules?limit=1", key=token).status == 401
    assert service.cli("apikey", "revoke", "cli-made", check=False).returncode == 2


# ---- request errors ----------------------------------------------------------------------------


def test_bad_json_and_bad_fields_are_422_naming_the_field(service: Service) -> None:
    r = service.call(
        "POST",
        f"{API}/rules/match",
        role="reader",
        data=b'{"text": ',
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 422 and r.body["fields"][0]["field"] == "body"
    assert "not valid JSON" in r.body["detail"]
    r = service.call("POST", f"{API}/messages/ingest", role="operator", json_body={"msgs": []})
    assert r.status == 422
    assert {f["field"] for f in r.body["fields"]} == {"messages", "msgs"}
    r = service.call("POST", f"{API}/messages/ingest", role="operator", json_body={"messages": "nope"})
    assert r.status == 422 and r.body["fields"][0]["field"] == "messages"
    r = service.call("POST", f"{API}/rules/match", role="reader", json_body={"text": "a", "messages": ["b"]})
    assert r.status == 422 and "either text" in r.body["detail"]
    r = service.call("POST", f"{API}/rules/match", role="reader", json_body={"messages": [{"id": "1"}]})
    assert r.status == 422 and any(f["field"].startswith("messages.0") for f in r.body["fields"])
    r = service.call("GET", f"{API}/rules?status=gone", role="reader")
    assert r.status == 422 and r.body["fields"][0]["field"] == "status"
    r = service.call("GET", f"{API}/rules?profile=no-such-profile", role="reader")
    assert r.status == 422 and "unknown safety profile" in r.body["detail"]
    r = service.call("GET", f"{API}/rules/export?backend=xml", role="reader")
    assert r.status == 422 and r.body["fields"][0]["field"] == "backend"
    r = service.call("POST", f"{API}/patterns/mine", role="operator", json_body={"stage2_slice": "huge"})
    assert r.status == 422 and r.body["detail"].startswith("stage-2 slice must be one of narrow, default")
    r = service.call("POST", f"{API}/patterns/mine", role="operator", json_body={"stage2_sample_size": 0})
    assert r.status == 422 and r.body["fields"][0]["field"] == "stage2_sample_size"
    r = service.call("GET", f"{API}/nothing-here", role="reader")
    assert r.status == 404 and r.body["error"] == "not_found"


def test_oversized_body_and_batches_are_413(service: Service) -> None:
    # Declared too large: answered from the headers, the body is never read.
    host, port = service.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", f"{API}/messages/ingest")
    for name, value in (("X-API-Key", service.keys["operator"]), ("Content-Type", "application/json"),
                        ("Content-Length", str((MAX_BODY_MB << 20) + 1))):  # fmt: skip
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"] == "payload_too_large"
    conn.close()
    # Streamed without a length (chunked): cut off once it passes the limit.
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = (b"x" * (256 << 10) for _ in range(4 * MAX_BODY_MB + 1))
    headers = {"X-API-Key": service.keys["operator"], "Content-Type": "application/json"}
    with contextlib.suppress(OSError):  # the server may answer and close before all is sent
        conn.request("POST", f"{API}/messages/ingest", body=chunks, headers=headers, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"] == "payload_too_large"
    conn.close()
    too_many = {"messages": [{"text": f"m{i}"} for i in range(5001)]}
    r = service.call("POST", f"{API}/messages/ingest", role="operator", json_body=too_many)
    assert r.status == 413 and "at most 5,000" in r.body["detail"]
    r = service.call("POST", f"{API}/rules/match", role="reader", json_body={"messages": ["x"] * 1001})
    assert r.status == 413 and "at most 1,000" in r.body["detail"]
    r = service.call("POST", f"{API}/analyze", role="operator", json_body=too_many)
    assert r.status == 413


def test_unexpected_errors_reach_the_client_without_a_traceback(service: Service, mined: dict) -> None:
    # Break a table the rule list reads, for one request: the client sees a bare 500 with a reference.
    with psycopg.connect(service.url, autocommit=True) as conn:
        conn.execute("alter table patas.rule_lifecycle rename column tier to tier_broken")
        try:
            r = service.call("GET", f"{API}/rules", role="reader")
        finally:
            conn.execute("alter table patas.rule_lifecycle rename column tier_broken to tier")
    assert r.status == 500
    assert r.body["error"] == "internal_error" and r.body["detail"].startswith("internal error (ref ")
    assert b"Traceback" not in r.raw and b"tier_broken" not in r.raw and b"psycopg" not in r.raw
    ref = r.body["detail"].split("ref ")[1].rstrip(")")
    assert ref in service.log_path.read_text()  # the server log has it, with the traceback
    nul = service.call("GET", f"{API}/rules/r_%00", role="reader")
    assert nul.status == 422 and nul.body["error"] == "invalid_value"


# ---- ingest, mining, runs ----------------------------------------------------------------------


def test_ingest_accounts_for_every_message(service: Service, mined: dict) -> None:
    messages = [
        {"id": "api-ok-1", "text": "Lunch at noon?", "is_spam": False},
        {"text": "   "},
        "not an object",
        {"id": "api-ok-1", "text": "the same id again"},
        {"text": "labelled oddly", "is_spam": "maybe"},
        {"text": "bad time", "timestamp": "yesterday-ish"},
        {"text": "nul \u0000 inside"},
        {"text": "meta not an object", "meta": [1, 2]},
    ]
    r = service.call("POST", f"{API}/messages/ingest", role="operator", json_body={"messages": messages})
    assert r.status == 200, r.body
    b = r.body
    assert (b["read"], b["loaded"], b["duplicate"], b["quarantined"]) == (8, 1, 1, 6)
    assert b["read"] == b["loaded"] + b["duplicate"] + b["quarantined"]
    reasons = {q["index"]: q["reason_code"] for q in b["quarantine"]}
    assert reasons == {
        1: "empty_text",
        2: "not_an_object",
        4: "unknown_label",
        5: "bad_timestamp",
        6: "nul_byte",
        7: "bad_meta",
    }
    again = service.call(
        "POST", f"{API}/messages/ingest", role="operator", json_body={"messages": messages[:1]}
    )
    assert (again.body["loaded"], again.body["duplicate"]) == (0, 1)
    with psycopg.connect(service.url) as conn:
        row = conn.execute(
            "select status, read_count, source_format from raw.ingest_batches where batch_id = %s",
            (b["batch_id"],),
        ).fetchone()
    assert row == ("done", 8, "jsonl")


def test_runs_report_api_runs_and_unknown_ids(service: Service, mined: dict) -> None:
    r = service.call("GET", f"{API}/runs/{mined['run_id']}", role="reader")
    assert r.status == 200
    assert r.body["kind"] == "mine" and r.body["requested_by"] == "test-operator"
    assert r.body["summary"]["success"] is True and r.body["windows"]["split_mode"] == "time"
    assert r.body["dagster_status"] == "SUCCESS"  # on the instance `patas ui` shows
    assert service.call("GET", f"{API}/runs/no-such-run", role="reader").status == 404


# ---- patterns and rules ------------------------------------------------------------------------


def test_patterns_list_signals_and_clusters_with_their_rules(service: Service, mined: dict) -> None:
    r = service.call("GET", f"{API}/patterns?limit=1000", role="reader")
    assert r.status == 200
    kinds = {p["kind"] for p in r.body["patterns"]}
    assert kinds == {"signal", "cluster"}
    with_rules = [p for p in r.body["patterns"] if p["rule_ids"]]
    assert with_rules, "some pattern has a drafted rule"
    card = service.call("GET", f"{API}/rules/{with_rules[0]['rule_ids'][0]}", role="reader").body
    assert card["lineage"]["pattern_id"] == with_rules[0]["pattern_id"]
    clusters = service.call("GET", f"{API}/patterns?kind=cluster&limit=2", role="reader").body
    assert {p["kind"] for p in clusters["patterns"]} == {"cluster"} and len(clusters["patterns"]) <= 2


def test_patterns_match_returns_the_nearest_known_patterns_with_their_rules(
    service: Service, mined: dict
) -> None:
    clusters = service.call("GET", f"{API}/patterns?kind=cluster&limit=1", role="reader").body["patterns"]
    assert clusters, "the mined corpus forms clusters"
    text = clusters[0]["examples"][0]
    r = service.call("POST", f"{API}/patterns/match", role="reader", json_body={"text": text, "k": 3})
    assert r.status == 200, r.body
    assert r.body["provider"] == "lexical" and r.body["method"] in ("pgvector", "exact")
    sims = [m["similarity"] for m in r.body["matches"]]
    assert 1 <= len(sims) <= 3 and sims == sorted(sims, reverse=True) and sims[0] > 0.5
    assert all({"pattern_id", "kind", "rules", "version", "runs_active"} <= set(m) for m in r.body["matches"])
    assert any(m["pattern_id"] == f"cluster:{clusters[0]['cluster_id']}" for m in r.body["matches"])
    blank = service.call("POST", f"{API}/patterns/match", role="reader", json_body={"text": "   "})
    assert blank.status == 422 and "text" in blank.body["detail"]
    bad_k = service.call("POST", f"{API}/patterns/match", role="reader", json_body={"text": "x", "k": 0})
    assert bad_k.status == 422 and "k" in bad_k.body["detail"]


def test_rules_filters_and_pages(service: Service, mined: dict) -> None:
    everything = service.call("GET", f"{API}/rules?limit=1000", role="reader").body
    assert everything["total"] == len(everything["rules"]) > 0
    assert "precision" not in everything["rules"][0]
    active = _active(service)
    assert active and all(r["status"] == "active" and "precision" in r for r in active)
    page1 = service.call("GET", f"{API}/rules?limit=5&offset=0", role="reader").body
    page2 = service.call("GET", f"{API}/rules?limit=5&offset=5", role="reader").body
    assert page1["next_offset"] == 5 and len(page1["rules"]) == 5
    assert [r["rule_id"] for r in page1["rules"] + page2["rules"]] == [
        r["rule_id"] for r in everything["rules"][:10]
    ]
    precise = service.call(
        "GET", f"{API}/rules?min_precision=0.99&include_evaluation=true&limit=1000", role="reader"
    )
    assert all(r["precision"] >= 0.99 for r in precise.body["rules"])
    conservative = service.call("GET", f"{API}/rules?profile=conservative&limit=1000", role="reader").body
    with psycopg.connect(service.url) as conn:
        members = {
            r[0]
            for r in conn.execute(
                "select rule_id from patas.ruleset_members where ruleset_name = 'profile:conservative'"
            )
        }
    assert {r["rule_id"] for r in conservative["rules"]} == members


def test_rule_card_and_unknown_rule(service: Service, mined: dict) -> None:
    rule = _active(service)[0]
    r = service.call("GET", f"{API}/rules/{rule['rule_id']}", role="reader")
    assert r.status == 200
    assert r.body["rule_id"] == rule["rule_id"] and r.body["status"] == "active"
    assert r.body["latest_metrics"]["precision"] == rule["precision"]
    assert r.body["audit"] and r.body["example_hits"]
    prefix = service.call("GET", f"{API}/rules/{rule['rule_id'][:12]}", role="reader")
    assert prefix.status in (
        200,
        404,
    )  # a unique prefix resolves; an ambiguous one is a 404 with the candidates
    missing = service.call("GET", f"{API}/rules/r_doesnotexist", role="reader")
    assert missing.status == 404 and missing.body["error"] == "not_found"


def test_exports(service: Service, mined: dict) -> None:
    active = {r["rule_id"] for r in _active(service)}
    rol = service.call("GET", f"{API}/rules/export?backend=rol", role="reader")
    assert rol.status == 200 and rol.headers["content-type"].startswith("application/json")
    assert {x["id"] for x in rol.body["rules"]} | {x["id"] for x in rol.body["skipped"]} == active
    assert service.call("GET", "/export-rules", role="reader").body == rol.body
    sql = service.call("GET", f"{API}/rules/export?backend=sql", role="reader")
    assert sql.status == 200 and sql.body.startswith("-- PATAS rules (active)")
    typed = service.call("GET", f"{API}/rules/export?backend=json&status=all", role="reader")
    assert typed.body["status"] == "all" and len(typed.body["rules"]) >= len(active)


# ---- matching ----------------------------------------------------------------------------------


def test_match_equals_shadow_evaluation_on_the_evaluation_window(service: Service, mined: dict) -> None:
    active = {r["rule_id"] for r in _active(service)}
    with psycopg.connect(service.url) as conn:
        messages = conn.execute(
            """
            select m.message_id, m.text, m.meta from intermediate.int_messages_enriched as m
            inner join intermediate.int_messages_windowed as w
                on w.message_id = m.message_id and w.window_name = 'evaluation'
            order by m.message_id
            """
        ).fetchall()
        hits = {
            (r[0], r[1])
            for r in conn.execute(
                "select message_id, rule_id from marts.rule_hits where window_name = 'evaluation' and rule_id = any(%s)",
                (sorted(active),),
            )
        }
    assert messages and hits
    got = set()
    for start in range(0, len(messages), 1000):
        chunk = messages[start : start + 1000]
        body = {"messages": [{"id": str(mid), "text": text, "meta": meta} for mid, text, meta in chunk]}
        r = service.call("POST", f"{API}/rules/match", role="reader", json_body=body)
        assert r.status == 200, r.body
        assert r.body["ruleset"]["rule_count"] == len(active)
        for res in r.body["results"]:
            got |= {(int(res["id"]), m["rule_id"]) for m in res["matched"]}
    assert got == hits


def test_match_one_text_and_the_cli(service: Service, mined: dict, tmp_path) -> None:
    with psycopg.connect(service.url) as conn:
        _, text = conn.execute(
            "select h.message_id, m.text from marts.rule_hits as h "
            "inner join intermediate.int_messages_enriched as m using (message_id) "
            "where h.window_name = 'evaluation' and h.rule_id in (select rule_id from marts.active_rules) "
            "order by h.message_id limit 1"
        ).fetchone()
    one = service.call("POST", f"{API}/rules/match", role="reader", json_body={"text": text})
    assert one.status == 200
    matched = one.body["results"][0]["matched"]
    assert matched and all({"rule_id", "tier", "description"} <= set(m) for m in matched)
    cli = service.cli("match", text, "--json")
    assert json.loads(cli.stdout)["matched"] == matched
    lines = tmp_path / "texts.txt"
    lines.write_text(f"{text}\nnothing to see here, see you at lunch\n")
    res = service.cli("match", "--file", str(lines), "--json")
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert out[0]["matched"] == matched and out[1]["matched"] == []
    assert service.cli("match", "nothing to see here, see you at lunch", check=False).returncode == 1


# ---- lifecycle ---------------------------------------------------------------------------------


def test_manual_actions_are_audited_and_reach_match_and_exports_at_once(
    service: Service, mined: dict
) -> None:
    rule = _active(service)[0]
    rid = rule["rule_id"]
    with psycopg.connect(service.url) as conn:
        text = conn.execute(
            "select m.text from marts.rule_hits as h inner join intermediate.int_messages_enriched as m "
            "using (message_id) where h.rule_id = %s order by h.message_id limit 1",
            (rid,),
        ).fetchone()[0]

    def matched_ids() -> set[str]:
        r = service.call("POST", f"{API}/rules/match", role="reader", json_body={"text": text})
        return {m["rule_id"] for m in r.body["results"][0]["matched"]}

    assert rid in matched_ids()
    no_reason = service.call("POST", f"{API}/rules/{rid}/deprecate", role="admin", json_body={"reason": ""})
    assert no_reason.status == 422 and no_reason.body["fields"][0]["field"] == "reason"
    r = service.call(
        "POST", f"{API}/rules/{rid}/deprecate", role="admin", json_body={"reason": "false positives at night"}
    )
    assert r.status == 200, r.body
    assert (r.body["from_status"], r.body["status"], r.body["actor"]) == (
        "active",
        "deprecated",
        "api:test-admin",
    )
    # Before the call returned: gone from marts.active_rules as consumers read it (the reader role),
    # the export endpoint, the export files and the match set.
    with psycopg.connect(service.url) as conn:
        conn.execute("set role patas_reader")
        assert (
            conn.execute("select count(*) from marts.active_rules where rule_id = %s", (rid,)).fetchone()[0]
            == 0
        )
    rol = service.call("GET", "/export-rules", role="reader").body
    assert rid not in {x["id"] for x in rol["rules"]}
    exported = json.loads((service.home / "exports" / "rules.rol.json").read_text())
    assert rid not in {x["id"] for x in exported["rules"] + exported["skipped"]}
    assert rid not in matched_ids()
    again = service.call("POST", f"{API}/rules/{rid}/deprecate", role="admin", json_body={"reason": "twice"})
    assert again.status == 409 and again.body["error"] == "lifecycle_conflict"
    pin = service.call("POST", f"{API}/rules/{rid}/pin", role="admin", json_body={"reason": "hold it"})
    assert pin.status == 200 and pin.body["is_pinned"] is True
    back = service.call("POST", f"{API}/rules/{rid}/promote", role="admin", json_body={"reason": "reviewed"})
    assert back.status == 200 and back.body["status"] == "active"
    assert rid in matched_ids()
    with psycopg.connect(service.url) as conn:
        conn.execute("set role patas_reader")
        assert (
            conn.execute("select count(*) from marts.active_rules where rule_id = %s", (rid,)).fetchone()[0]
            == 1
        )
    unpin = service.call(
        "POST", f"{API}/rules/{rid}/pin", role="admin", json_body={"reason": "done", "pinned": False}
    )
    assert unpin.body["is_pinned"] is False
    audit = service.call("GET", f"{API}/rules/{rid}", role="reader").body["audit"]
    manual = [(a["to_status"], a["reason"], a["actor"]) for a in audit if a["actor"].startswith("api:")]
    assert manual == [
        ("deprecated", "manual_deprecate: false positives at night", "api:test-admin"),
        ("deprecated", "manual_pin: hold it", "api:test-admin"),
        ("active", "manual_promote: reviewed", "api:test-admin"),
        ("active", "manual_unpin: done", "api:test-admin"),
    ]
    assert (
        service.call("POST", f"{API}/rules/r_nope/promote", role="admin", json_body={"reason": "x"}).status
        == 404
    )


def test_changes_from_another_process_reach_match(service: Service, mined: dict) -> None:
    rid = _active(service)[-1]["rule_id"]
    before = service.call("POST", f"{API}/rules/match", role="reader", json_body={"text": "x"}).body[
        "ruleset"
    ]
    service.cli("rules", "deprecate", rid, "--reason", "from the CLI")
    after = service.call("POST", f"{API}/rules/match", role="reader", json_body={"text": "x"}).body["ruleset"]
    assert after["rule_count"] == before["rule_count"] - 1 and after["fingerprint"] != before["fingerprint"]
    service.cli("rules", "promote", rid, "--reason", "back from the CLI")


def test_add_rule_eval_shadow_and_promote_by_profile(service: Service, mined: dict) -> None:
    typed = {
        "rule": {"kind": "text_contains", "value": "lunch"},
        "reason": "hand-written",
        "description": "lunch",
    }
    r = service.call("POST", f"{API}/rules", role="admin", json_body=typed)
    assert r.status == 201, r.body
    assert r.body["status"] == "candidate" and r.body["created"] is True
    typed_id = r.body["rule_id"]
    raw = service.call(
        "POST",
        f"{API}/rules",
        role="admin",
        json_body={"sql": "m.normalized_text like '%lunch at noon%'", "reason": "sql"},
    )
    assert raw.status == 201, raw.body
    for bad in (
        "drop table raw.messages",
        "select * from pg_authid",
        "m.normalized_text like '%' -- everything",
    ):
        rej = service.call("POST", f"{API}/rules", role="admin", json_body={"sql": bad, "reason": "bad"})
        assert rej.status == 422 and rej.body["error"] == "rule_rejected", (bad, rej.body)
    bad_rule = service.call(
        "POST", f"{API}/rules", role="admin", json_body={"rule": {"kind": "nope"}, "reason": "x"}
    )
    assert bad_rule.status == 422 and "rule.kind" in bad_rule.body["detail"]
    neither = service.call("POST", f"{API}/rules", role="admin", json_body={"reason": "x"})
    assert neither.status == 422

    # Not evaluated yet: promotion by profile refuses until shadow evaluation has measured them.
    early = service.call("POST", f"{API}/rules/promote", role="operator", json_body={"dry_run": True})
    assert early.status == 409 and "no evaluation row" in early.body["detail"]

    start = service.call("POST", f"{API}/rules/eval-shadow", role="operator")
    assert start.status == 202, start.body
    state = service.wait_run(start.body["run_id"])
    assert state["status"] == "success", state
    assert state["kind"] == "eval_shadow"
    card = service.call("GET", f"{API}/rules/{typed_id}", role="reader").body
    assert card["status"] in ("shadow", "active") and card["latest_metrics"] is not None

    with psycopg.connect(service.url) as conn:
        before = conn.execute("select rule_id, status from patas.rule_lifecycle order by 1").fetchall()
    dry = service.call(
        "POST", f"{API}/rules/promote", role="operator", json_body={"profile": "aggressive", "dry_run": True}
    )
    assert dry.status == 200, dry.body
    assert dry.body["dry_run"] is True and dry.body["changes"], dry.body
    assert all(c["to_status"] in ("active", "deprecated", "shadow") for c in dry.body["changes"])
    with psycopg.connect(service.url) as conn:
        assert (
            conn.execute("select rule_id, status from patas.rule_lifecycle order by 1").fetchall() == before
        )
    real = service.call("POST", f"{API}/rules/promote", role="operator", json_body={"profile": "aggressive"})
    assert real.status == 200 and real.body["changes"] == dry.body["changes"]
    with psycopg.connect(service.url) as conn:
        statuses = dict(conn.execute("select rule_id, status from patas.rule_lifecycle").fetchall())
        actors = {
            r[0]
            for r in conn.execute(
                "select distinct actor from patas.rule_audit where reason like 'meets_profile%'"
            )
        }
    assert all(statuses[c["rule_id"]] == c["to_status"] for c in dry.body["changes"])
    with psycopg.connect(service.url) as conn:
        conn.execute("set role patas_reader")
        mart = {r[0] for r in conn.execute("select rule_id from marts.active_rules")}
    assert mart == {rid for rid, st in statuses.items() if st == "active"}
    assert "api:test-operator" in actors
    bad = service.call("POST", f"{API}/rules/promote", role="operator", json_body={"profile": "reckless"})
    assert bad.status == 422


def test_analyze_ingests_runs_and_returns_rules(service: Service, mined: dict, corpus: list[dict]) -> None:
    extra = [{**m, "id": f"analyze-{i}"} for i, m in enumerate(corpus[:300])]
    r = service.call("POST", f"{API}/analyze", role="operator", json_body={"messages": extra}, timeout=900)
    assert r.status == 200, r.body
    assert r.body["ingest"]["loaded"] == 300
    assert r.body["run"]["status"] == "success" and r.body["run"]["kind"] == "analyze"
    assert r.body["active_rules"] and {"rule_id", "precision", "tier"} <= set(r.body["active_rules"][0])
    assert any(rs["ruleset_name"] == "active" for rs in r.body["rulesets"])


def test_mine_with_nothing_new_runs_no_step_and_force_runs_the_graph(service: Service, mined: dict) -> None:
    """POST /patterns/mine behaves as `patas run`: with nothing new since the latest run it runs no
    step (a success at once, the latest run's summary marked nothing_new, no Dagster run);
    ``force`` runs the graph anyway."""
    forced = service.call("POST", f"{API}/patterns/mine", role="operator", json_body={"force": True})
    assert forced.status == 202, forced.body
    assert forced.body["status"] == "running" and "nothing_new" not in forced.body, forced.body
    done = service.wait_run(forced.body["run_id"])
    assert done["status"] == "success" and done["dagster_status"] == "SUCCESS", done
    assert "nothing_new" not in done["summary"]
    rules_before = service.call("GET", f"{API}/rules?limit=1000", role="reader").body["rules"]

    again = service.call("POST", f"{API}/patterns/mine", role="operator")
    assert again.status == 202, again.body
    since = {"since_run": forced.body["run_id"]}
    assert again.body["status"] == "success" and again.body["nothing_new"] == since, again.body
    assert again.body["run_id"] != forced.body["run_id"]
    state = service.call("GET", f"{API}/runs/{again.body['run_id']}", role="reader")
    assert state.status == 200, state.body
    assert state.body["status"] == "success" and state.body["kind"] == "mine", state.body
    assert state.body["summary"]["nothing_new"] == since
    assert state.body["summary"]["rules_by_status"] == done["summary"]["rules_by_status"]
    assert "dagster_status" not in state.body  # no Dagster run was started
    assert service.call("GET", f"{API}/rules?limit=1000", role="reader").body["rules"] == rules_before


def test_no_secret_in_the_server_log(service: Service, mined: dict) -> None:
    log = service.log_path.read_text()
    assert log, "the server logs requests"
    for token in service.keys.values():
        assert token not in log and token[:20] not in log


def test_bench_serve_measures_match_latency_and_throughput(
    service: Service, mined: dict, corpus: list[dict], tmp_path
) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in corpus[:200]))
    out = tmp_path / "serve.json"
    res = service.cli(
        "bench", "serve", "--base", service.base, "--key", service.keys["reader"], "--corpus", str(texts),
        "--single", "30", "--batches", "2", "--batch-size", "50", "--out", str(out),
    )  # fmt: skip
    figures = json.loads(out.read_text())
    assert json.loads(res.stdout) == figures
    assert figures["active_rules"] == len(_active(service))
    assert (
        figures["single"]["requests"] == 30 and 0 < figures["single"]["p50_ms"] <= figures["single"]["p99_ms"]
    )
    assert figures["batch"]["messages_per_second"] > 0


def test_the_readme_curl_examples_as_a_user_types_them(service: Service, mined: dict) -> None:
    """The README's curl block, line by line in bash, against the real server (its port swapped in)."""
    import re
    import shutil

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "curl" in b)
    commands = re.split(r"(?<!\\)\n", block.strip())
    assert commands[0] == "KEY=$(patas apikey create ops --role operator)"
    assert commands[1] == "API=http://127.0.0.1:8000/api/v1"
    curl = shutil.which("curl")
    assert curl, "curl is needed to type the README's examples"
    env = {**service.env, "PATH": f"{Path(PATAS).parent}:{os.environ['PATH']}"}
    key = subprocess.run(
        ["bash", "-c", commands[0] + ' && echo "$KEY"'], env=env, capture_output=True, text=True
    )
    assert key.returncode == 0, key.stderr
    env.update(KEY=key.stdout.strip(), API=service.base + "/api/v1")
    outputs = []
    run_id = None
    for command in commands[2:]:
        command = command.split("   #")[0].split("  #")[0].rstrip()
        if "<run_id>" in command:
            command = command.replace("<run_id>", run_id or "missing")
        res = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, (command, res.stderr)
        body = json.loads(res.stdout)
        outputs.append(body)
        if command.rstrip().endswith("$API/patterns/mine"):
            run_id = body.get("run_id")
            assert run_id, body
    ingest, _mine, run, rules, match, feedback = outputs
    assert feedback == {"received": 1, "recorded": 1, "unchanged": 0, "overrides": 1, "reversals": 1}
    assert ingest["read"] == ingest["loaded"] + ingest["duplicate"] + ingest["quarantined"] == 1
    assert run["run_id"] == run_id and run["status"] in ("queued", "started", "running", "success")
    assert all(r["status"] == "active" for r in rules["rules"])
    assert "results" in match
    assert service.wait_run(run_id)["status"] == "success"


HOSTILE_REGEXES = [r"(a+)+", r"(\w+\s?)+$", r"(a|ab)+", r"\d+\d+", r"(ab){1000}", r"(a)\1"]


def test_the_api_refuses_hostile_regexes_typed_and_raw(service: Service) -> None:
    """The HTTP entry point reaches the same regex check as the CLI: a pattern that can backtrack
    catastrophically is a 422 with the check's reason, typed or inside raw SQL, and nothing lands."""
    before = service.call("GET", f"{API}/rules?limit=1000", role="reader").body["rules"]
    for pattern in HOSTILE_REGEXES:
        typed = service.call(
            "POST",
            f"{API}/rules",
            role="admin",
            json_body={"rule": {"kind": "text_regex", "value": pattern}, "reason": "hostile"},
        )
        assert typed.status == 422 and "catastrophic backtracking" in typed.body["detail"], (
            pattern,
            typed.body,
        )
        sql = "m.normalized_text ~ '" + pattern.replace("'", "''") + "'"
        raw = service.call("POST", f"{API}/rules", role="admin", json_body={"sql": sql, "reason": "hostile"})
        assert raw.status == 422 and "catastrophic backtracking" in raw.body["detail"], (pattern, raw.body)
    after = service.call("GET", f"{API}/rules?limit=1000", role="reader").body["rules"]
    assert len(after) == len(before)
