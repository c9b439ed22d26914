"""The feedback loop through the API: appeals on an active rule's hits, the next run deprecates it.

Runs on the session's service after ``mined`` (one pipeline run); a module of its own, after
test_api.py, because it changes the active set the earlier tests read.
"""

from __future__ import annotations

import psycopg
from svc_harness import Service

API = "/api/v1"


def test_feedback_validates_and_refuses_unknown_ids_recording_nothing(service: Service, mined: dict) -> None:
    with psycopg.connect(service.url) as conn:
        known = conn.execute("select external_id from raw.messages order by message_id limit 1").fetchone()[0]
        before = conn.execute("select count(*) from patas.label_feedback").fetchone()[0]
    unknown = service.call(
        "POST",
        f"{API}/feedback",
        role="operator",
        json_body={
            "feedback": [{"id": known, "verdict": "ham"}, {"id": "no-such-message", "verdict": "ham"}]
        },
    )
    assert unknown.status == 404 and "no-such-message" in unknown.body["detail"], unknown.body
    for bad, field in (
        ({"id": known, "verdict": "maybe"}, "verdict"),
        ({"id": known, "verdict": "ham", "source": "Moderator; drop"}, "source"),
        ({"verdict": "ham"}, "give id and verdict"),
    ):
        r = service.call("POST", f"{API}/feedback", role="operator", json_body=bad)
        assert r.status == 422 and field in str(r.body), (bad, r.body)
    with psycopg.connect(service.url) as conn:
        assert conn.execute("select count(*) from patas.label_feedback").fetchone()[0] == before


def test_appealed_hits_deprecate_the_rule_on_the_next_run(service: Service, mined: dict) -> None:
    with psycopg.connect(service.url) as conn:
        # The active rule with the most spam hits on the evaluation window: its appeals are real
        # reversals (spam -> ham), as a platform's unban queue would send them.
        rule_id, ids = conn.execute(
            """
            select h.rule_id, array_agg(m.external_id order by m.external_id)
            from marts.rule_hits as h
            join raw.messages as m using (message_id)
            join patas.rule_lifecycle as l using (rule_id)
            where h.window_name = 'evaluation' and l.status = 'active' and not l.is_pinned and m.is_spam
            group by h.rule_id
            order by count(*) desc, h.rule_id
            limit 1
            """
        ).fetchone()
    assert len(ids) >= 2
    appeal = {
        "feedback": [{"id": i, "verdict": "ham", "source": "user_appeal", "note": "unbanned"} for i in ids]
    }
    r = service.call("POST", f"{API}/feedback", role="operator", json_body=appeal)
    assert r.status == 200, r.body
    assert r.body == {"received": len(ids), "recorded": len(ids), "unchanged": 0,
                      "overrides": len(ids), "reversals": len(ids)}  # fmt: skip
    again = service.call("POST", f"{API}/feedback", role="operator", json_body=appeal)
    assert again.body["recorded"] == 0 and again.body["unchanged"] == len(ids)

    start = service.call("POST", f"{API}/rules/eval-shadow", role="operator")
    assert start.status == 202, start.body
    assert service.wait_run(start.body["run_id"])["status"] == "success"

    card = service.call("GET", f"{API}/rules/{rule_id}", role="reader").body
    assert card["status"] == "deprecated", card
    with psycopg.connect(service.url) as conn:
        reason = conn.execute(
            "select reason from patas.rule_audit where rule_id = %s order by audit_id desc limit 1",
            (rule_id,),
        ).fetchone()[0]
        traced = conn.execute(
            """
            select count(*) from intermediate.int_message_labels_overridden as o
            join patas.label_feedback as f using (feedback_id)
            where o.is_reversal and f.source = 'user_appeal' and f.actor = 'api:test-operator'
              and o.external_id = any(%s)
            """,
            (ids,),
        ).fetchone()[0]
        active = {r[0] for r in conn.execute("select rule_id from marts.active_rules")}
    assert reason.startswith(f"feedback: {len(ids)} of "), reason
    assert traced == len(ids)
    assert rule_id not in active
