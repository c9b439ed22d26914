"""The lifecycle over two periods on the hand-made corpus, end to end through dbt and Postgres.

Period 1: rules are evaluated, the ones meeting the profile promoted; one is pinned by hand.
Period 2: a short code starts appearing in ham; the rule on it is deprecated with the reason
``precision_below_profile``; the pinned rule, decayed as well, is left alone. Every transition is
in ``patas.rule_audit``; ``active_rules``, ``ruleset_evaluation`` and ``rule_history`` follow; the
read-only role can read ``active_rules`` and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row
from test_shadow_eval_support import (
    MESSAGES,
    RULES,
    clear_messages,
    create_database,
    create_fixture,
    draft_rule,
    drop_database,
    insert_messages,
    message,
    run_dbt,
    run_post_lifecycle,
    run_shadow_evaluation,
    scratch_project,
)

from python_steps.lifecycle import manual, policy, store
from python_steps.lifecycle.profiles import ProfileConfig, SafetyProfile, TierThresholds
from python_steps.publish import exports as ex

pytestmark = pytest.mark.integration

# Profiles and tiers sized for a 12-message window; promotion on the evaluation window's own
# metrics (folds=0: the hand-made windows have no mining folds to cross-fit).
SMALL = SafetyProfile("small", min_precision=0.9, max_ham_hits=0, max_coverage=0.5, min_hits=2)
LOOSE = SafetyProfile("loose", min_precision=0.6, max_ham_hits=2, max_coverage=0.5, min_hits=1)
CONFIG = ProfileConfig(
    profiles={"small": SMALL, "loose": LOOSE},
    default_profile="small",
    tiers=TierThresholds(safe_auto_min_precision=0.9, safe_auto_max_false_positive_rate=1.0),
)

PERIOD_2 = [
    message(101, "txt 87121 for bus times", False, short_codes=["87121"]),
    message(102, "reply to 87121 to stop", False, short_codes=["87121"]),
    message(103, "txt WIN to 87121", True, short_codes=["87121"]),
    message(104, "win cash at the school fair", False),
    message(105, "win a raffle prize", False),
    message(106, "win cash now", True),
    message(107, "claim at spam.example", True, domains=["spam.example"]),
    message(108, "hello", False),
]

RAW_DDL = """
-- raw.messages itself comes from python_steps.tables (create_fixture builds every PATAS table)
insert into raw.messages (message_id, external_id, text, batch_id, source_line)
overriding system value values (1, 'm1', 'secret', 1, 1) on conflict do nothing;
"""


@pytest.fixture(scope="module")
def world(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    name = f"patas_lifecycle_{os.getpid()}"
    url = create_database(server_url, name)
    project = scratch_project(tmp_path_factory.mktemp("lifecycle"))
    with psycopg.connect(url) as conn:
        create_fixture(conn, MESSAGES)
        conn.execute(RAW_DDL)
        conn.commit()
        ids = {key: draft_rule(conn, obj) for key, obj in RULES.items()}
    yield {"url": url, "project": project, "ids": ids}
    drop_database(server_url, name)


def _audit(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("select * from patas.rule_audit order by audit_id").fetchall()


def _status(url: str) -> dict[str, tuple[str, bool, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select rule_id, status, is_pinned, tier from patas.rule_lifecycle").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _period(world: dict, run_id: str) -> dict:
    url, project = world["url"], world["project"]
    run_shadow_evaluation(project, url, run_id)
    with psycopg.connect(url) as conn:
        assert store.check_evaluation_consistency(conn, run_id) == []
        summary = store.apply_lifecycle(conn, run_id=run_id, profile="small", config=CONFIG, folds=0)
    run_post_lifecycle(project, url, run_id)
    return summary


def test_period_1_promotes_the_rules_that_meet_the_profile(world: dict) -> None:
    url, ids = world["url"], world["ids"]
    summary = _period(world, "period-1")
    assert summary["new_candidates"] == len(RULES)
    assert summary["promoted"] == sorted([ids["code_or_handle"], ids["win_regex"]])
    assert summary["transitions"] == {"candidate->shadow": len(RULES), "shadow->active": 2}
    status = _status(url)
    assert status[ids["code_or_handle"]][0] == "active"
    assert status[ids["win_regex"]][0] == "active"
    assert status[ids["domain"]][0] == "shadow"  # precision 2/3
    assert status[ids["nothing"]][0] == "shadow"  # evaluated: no hit, nothing to promote
    audit = _audit(url)
    promoted = [a for a in audit if a["to_status"] == "active"]
    assert {a["rule_id"] for a in promoted} == set(summary["promoted"])
    for a in promoted:
        assert a["reason"].startswith("meets_profile: small")
        assert a["metrics"]["precision"] == 1.0 and a["run_id"] == "period-1" and a["actor"] == "patas"


def test_dbt_tests_pass_on_the_evaluation_marts(world: dict) -> None:
    res = run_dbt(
        world["project"],
        world["url"],
        [
            "test",
            "--select",
            "rule_hits",
            "rule_evaluations",
            "rule_overlaps",
            "ruleset_evaluation",
            "active_rules",
            "rule_history",
        ],
        run_id="period-1",
        check=False,
    )
    assert res.returncode == 0, res.stdout[-5000:]
    assert "assert_rule_evaluations_counts_are_consistent" in res.stdout


def test_active_rules_and_rulesets_after_period_1(world: dict) -> None:
    url, ids = world["url"], world["ids"]
    with psycopg.connect(url, row_factory=dict_row) as conn:
        active = {r["rule_id"]: r for r in conn.execute("select * from marts.active_rules").fetchall()}
        rulesets = {
            r["ruleset_name"]: r for r in conn.execute("select * from marts.ruleset_evaluation").fetchall()
        }
    assert set(active) == {ids["code_or_handle"], ids["win_regex"]}
    regex_rule = active[ids["win_regex"]]
    assert regex_rule["regex"] and regex_rule["sql_expression"] and regex_rule["description"]
    assert regex_rule["promoted_precision"] == 1.0 and regex_rule["precision"] == 1.0
    assert regex_rule["promoted_run_id"] == "period-1" and regex_rule["evaluated_run_id"] == "period-1"
    assert regex_rule["tier"] in ("SAFE_AUTO", "REVIEW_ONLY")
    # The union of the two active rules: messages 1, 2, 9, 10, 13 (9 unlabelled).
    act = rulesets["active"]
    assert (act["rule_count"], act["hit_count"], act["spam_hit_count"], act["unlabelled_hit_count"]) == (
        2,
        5,
        4,
        1,
    )
    assert act["precision"] == 1.0 and act["recall"] == pytest.approx(4 / 7)
    assert rulesets["profile:small"]["rule_count"] == 2
    # The loose profile would also take phone_and_handle (one spam hit); the domain rule (precision
    # 2/3, one ham hit) meets its bar but is not SAFE_AUTO, and tiers gate promotion; call_not_bot is
    # out (precision 0.5).
    assert rulesets["profile:loose"]["rule_count"] == 3


def test_reader_role_reads_active_rules_and_nothing_else(world: dict) -> None:
    with psycopg.connect(world["url"], autocommit=True) as conn:
        conn.execute("set role patas_reader")
        assert conn.execute("select count(*) from marts.active_rules").fetchone()[0] == 2
        for sql in (
            "insert into marts.active_rules (rule_id) values ('x')",
            "delete from marts.active_rules",
            "update marts.active_rules set tier = 'SAFE_AUTO'",
            "select * from raw.messages",
            "select * from marts.rule_evaluations",
            "select * from patas.rule_lifecycle",
            "create table marts.mine (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)


def test_rerunning_a_period_changes_nothing(world: dict) -> None:
    url = world["url"]
    before_audit, before_status = _audit(url), _status(url)
    with psycopg.connect(url) as conn:
        summary = store.apply_lifecycle(conn, run_id="period-1", profile="small", config=CONFIG, folds=0)
    assert summary["transitions"] == {} and summary["new_candidates"] == 0
    assert _audit(url) == before_audit and _status(url) == before_status


def test_manual_controls_are_audited(world: dict) -> None:
    url, ids = world["url"], world["ids"]
    with psycopg.connect(url) as conn:
        with pytest.raises(policy.LifecycleError, match="actor"):
            manual.pin_rule(conn, ids["win_regex"], reason="seasonal", actor="patas")
        with pytest.raises(policy.LifecycleError, match="reason"):
            manual.pin_rule(conn, ids["win_regex"], reason="  ", actor="cli:alice")
        with pytest.raises(policy.LifecycleError, match="unknown rule"):
            manual.deprecate_rule(conn, "r_0000000000000000", reason="x", actor="cli:alice")
        out = manual.pin_rule(conn, ids["win_regex"], reason="keep through the campaign", actor="cli:alice")
        assert out["is_pinned"] and out["status"] == "active"
        added = manual.add_manual_rule(
            conn, {"kind": "text_contains", "value": "bus times"}, reason="ops ticket 12", actor="cli:bob"
        )
        assert added["created"] and added["evaluation_kind"] == "predicate"
        again = manual.add_manual_rule(
            conn, '{"kind": "text_contains", "value": "bus times"}', reason="again", actor="cli:bob"
        )
        assert again == {**added, "created": False}
    audit = _audit(url)
    pin = [a for a in audit if a["reason"].startswith("manual_pin")]
    assert (
        len(pin) == 1
        and pin[0]["actor"] == "cli:alice"
        and pin[0]["from_status"] == pin[0]["to_status"] == "active"
    )
    adds = [a for a in audit if a["rule_id"] == added["rule_id"]]
    assert [a["to_status"] for a in adds] == ["candidate", "candidate"]
    assert adds[0]["reason"] == "manual_add: ops ticket 12"
    with psycopg.connect(url) as conn:
        origin = conn.execute(
            "select origin from patas.rule_drafts where rule_id = %s", (added["rule_id"],)
        ).fetchone()[0]
    assert origin == "manual"


def test_period_2_deprecates_decayed_rules_and_leaves_pinned_ones(world: dict) -> None:
    url, ids = world["url"], world["ids"]
    with psycopg.connect(url) as conn:
        clear_messages(conn)
        insert_messages(conn, PERIOD_2)
    summary = _period(world, "period-2")
    code_rule, regex_rule = ids["code_or_handle"], ids["win_regex"]
    assert set(summary["deprecated"]) == {code_rule}
    assert summary["deprecated"][code_rule].startswith("precision_below_profile")
    status = _status(url)
    assert status[code_rule][0] == "deprecated"
    assert status[regex_rule][:2] == ("active", True)  # decayed too (1 spam, 2 ham), but pinned
    dep = [a for a in _audit(url) if a["to_status"] == "deprecated"]
    assert len(dep) == 1 and dep[0]["run_id"] == "period-2" and dep[0]["metrics"]["ham_hit_count"] == 2
    with psycopg.connect(url, row_factory=dict_row) as conn:
        active = [r["rule_id"] for r in conn.execute("select rule_id from marts.active_rules").fetchall()]
        history = conn.execute(
            "select rule_id, run_id, run_seq, status, precision, precision_change from marts.rule_history "
            "where rule_id = %s order by run_seq",
            (code_rule,),
        ).fetchall()
    assert active == [regex_rule]
    assert [(h["run_id"], h["run_seq"], h["status"]) for h in history] == [
        ("period-1", 1, "active"),
        ("period-2", 2, "deprecated"),
    ]
    assert history[1]["precision"] == pytest.approx(1 / 3)
    assert history[1]["precision_change"] == pytest.approx(1 / 3 - 1.0)


def _reader_active(url: str) -> list[dict]:
    """marts.active_rules as the read-only role sees it."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("set role patas_reader")
        return conn.execute("select * from marts.active_rules order by rule_id").fetchall()


def _exported_ids(out_dir) -> dict[str, set[str]]:
    rol = json.loads((out_dir / "rules.rol.json").read_text())
    typed = json.loads((out_dir / "rules.json").read_text())
    sql = ex.parse_sql_export((out_dir / "rules.sql").read_text())
    return {
        "rol": {r["id"] for r in rol["rules"]} | {r["id"] for r in rol["skipped"]},
        "json": {r["id"] for r in typed["rules"]},
        "sql": {s["rule_id"] for s in sql},
    }


def test_manual_promote_and_deprecate(world: dict, tmp_path) -> None:
    url, ids = world["url"], world["ids"]
    out_dir = tmp_path / "exports"
    before = [r["rule_id"] for r in _reader_active(url)]
    assert ids["domain"] not in before
    with psycopg.connect(url) as conn:
        out = ex.manual_action(
            conn, "promote", ids["domain"], reason="reviewed by hand", actor="cli:carol", exports_dir=out_dir
        )
        assert out["status"] == "active" and out["from_status"] == "shadow"
        # before any run: the reader role already reads the promoted rule, the files hold it
        promoted = _reader_active(url)
        assert [r["rule_id"] for r in promoted] == sorted([*before, ids["domain"]])
        assert all(ids["domain"] in found for found in _exported_ids(out_dir).values())
        with pytest.raises(policy.LifecycleError, match="already active"):
            manual.promote_rule(conn, ids["domain"], reason="twice", actor="cli:carol")
    # the refreshed table is what the dbt model builds
    run_post_lifecycle(world["project"], url, "period-2")
    assert _reader_active(url) == promoted
    with psycopg.connect(url) as conn:
        out = ex.manual_action(
            conn, "deprecate", ids["domain"], reason="changed my mind", actor="cli:carol", exports_dir=out_dir
        )
        assert out["status"] == "deprecated"
    assert [r["rule_id"] for r in _reader_active(url)] == before
    assert not any(ids["domain"] in found for found in _exported_ids(out_dir).values())
    last = _audit(url)[-2:]
    assert [a["reason"].split(":")[0] for a in last] == ["manual_promote", "manual_deprecate"]
    assert last[0]["run_id"] == "period-2" and last[0]["metrics"]["hit_count"] == 1  # latest evaluation


def test_consistency_check_finds_problems(world: dict) -> None:
    url = world["url"]
    with psycopg.connect(url) as conn:
        assert store.check_evaluation_consistency(conn, "period-2") == []
        problems = store.check_evaluation_consistency(conn, "some-other-run")
        assert any("not 'some-other-run'" in p for p in problems)
        draft_rule(conn, {"kind": "domain", "value": "late.example"})  # drafted after evaluation
        problems = store.check_evaluation_consistency(conn, "period-2")
        assert any("no evaluation row" in p for p in problems)
        with pytest.raises(policy.LifecycleError, match="inconsistent"):
            store.apply_lifecycle(conn, run_id="period-2", profile="small", config=CONFIG, folds=0)
        conn.rollback()
        conn.execute(
            "update marts.rule_evaluations set spam_hit_count = spam_hit_count + 1 where hit_count > 0"
        )
        problems = store.check_evaluation_consistency(conn, "period-2")
        assert any("out of range or inconsistent" in p for p in problems)
        conn.rollback()
        conn.execute("delete from marts.rule_hits where window_name = 'evaluation'")
        problems = store.check_evaluation_consistency(conn, "period-2")
        assert any("disagree" in p for p in problems)
        conn.rollback()
        conn.execute("delete from marts.rule_evaluations where hit_count > 0 and window_name = 'evaluation'")
        problems = store.check_evaluation_consistency(conn, "period-2")
        assert any("pair(s) in marts.rule_hits have no evaluation row" in p for p in problems)
        assert not any("disagree" in p for p in problems)
        conn.rollback()


def test_raw_sql_rules_go_through_the_validator(world: dict) -> None:
    url = world["url"]
    with psycopg.connect(url) as conn:
        for bad in (
            "select id from messages where true",
            "select id from users where text like '%x%'",
            "strpos(m.normalized_text, 'x') > 0; drop table raw.messages",
            "pg_sleep(10) is not null",
            "m.is_spam",
        ):
            with pytest.raises(policy.LifecycleError, match=r"rejected|not a valid predicate"):
                manual.add_manual_rule(conn, raw_sql=bad, reason="try", actor="cli:mallory")
        with pytest.raises(policy.LifecycleError, match="80%"):
            manual.add_manual_rule(
                conn, raw_sql="m.normalized_text like '% %'", reason="wide", actor="cli:bob"
            )
        out = manual.add_manual_rule(
            conn,
            raw_sql="SELECT id FROM messages WHERE normalized_text LIKE '%bus times%'",
            reason="from the ops wiki",
            actor="cli:bob",
        )
        assert out["created"] and out["evaluation_kind"] == "predicate"
        row = conn.execute(
            "select sql_expression, origin, rule_json from patas.rule_drafts where rule_id = %s",
            (out["rule_id"],),
        ).fetchone()
    assert row[0] == "normalized_text LIKE '%bus times%'" and row[1] == "manual"
    assert row[2] == {"raw_sql": row[0]}
    # The next shadow evaluation measures it with the other predicate rules.
    run_shadow_evaluation(world["project"], url, "period-3")
    with psycopg.connect(url) as conn:
        hits = {
            r[0]
            for r in conn.execute(
                "select message_id from marts.rule_hits where rule_id = %s", (out["rule_id"],)
            )
        }
    assert hits == {101}


def test_rule_cards(world: dict) -> None:
    from python_steps.publish import cards as rule_cards

    url, ids = world["url"], world["ids"]
    code_rule = ids["code_or_handle"]
    with psycopg.connect(url) as conn:
        listed = rule_cards.list_rules(conn)
        active = rule_cards.list_rules(conn, status="active")
        card = rule_cards.rule_card(conn, code_rule)
        prefix_card = rule_cards.rule_card(conn, code_rule[:10])
        with pytest.raises(rule_cards.RuleNotFound):
            rule_cards.rule_card(conn, "r_")  # ambiguous
        with pytest.raises(rule_cards.RuleNotFound):
            rule_cards.rule_card(conn, "r_ffffffffffffffff")
    assert [r["rule_id"] for r in listed] == sorted(r["rule_id"] for r in listed)
    assert {r["rule_id"] for r in active} == {ids["win_regex"]}
    assert prefix_card["rule_id"] == code_rule
    assert card["status"] == "deprecated" and card["description"] and card["rule"]
    assert [m["run_id"] for m in card["metrics_over_time"]] == ["period-1", "period-2"]
    assert card["promoted_metrics"]["precision"] == 1.0
    assert [a["to_status"] for a in card["audit"]] == ["candidate", "shadow", "active", "deprecated"]
    assert card["lineage"]["signals"] == [
        {"clause_no": 1, "signal_kind": "handle", "signal_value": "bonus_bot"},
        {"clause_no": 2, "signal_kind": "short_code", "signal_value": "87121"},
    ]
    assert {h["message_id"] for h in card["example_hits"]} == {103}
    assert {h["message_id"] for h in card["ham_matched"]} == {101, 102}
