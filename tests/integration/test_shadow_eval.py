"""Shadow evaluation in dbt on a small hand-made corpus.

The hits must be exactly the reference evaluator's (both evaluation paths: signal joins and
batched predicate scans), and every metric in ``rule_evaluations`` must equal the Python formulas
of ``python_steps.metrics`` on the same counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from test_shadow_eval_support import (
    MESSAGES,
    RULES,
    create_database,
    create_fixture,
    draft_rule,
    drop_database,
    expected_hits,
    run_dbt,
    run_shadow_evaluation,
    scratch_project,
)

from python_steps import metrics as mt
from python_steps import rules as rl

pytestmark = pytest.mark.integration

RUN_ID = "run-shadow-1"


@pytest.fixture(scope="module")
def shadow_db(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict]]:
    name = f"patas_shadow_{os.getpid()}"
    url = create_database(server_url, name)
    project = scratch_project(tmp_path_factory.mktemp("shadow"))
    with psycopg.connect(url) as conn:
        create_fixture(conn, MESSAGES)
        ids = {key: draft_rule(conn, obj) for key, obj in RULES.items()}
    run_shadow_evaluation(project, url, RUN_ID)
    yield url, project, ids
    drop_database(server_url, name)


def _hits(url: str, window: str = "evaluation") -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    with psycopg.connect(url) as conn:
        for rid, mid in conn.execute(
            "select rule_id, message_id from marts.rule_hits where window_name = %s", (window,)
        ).fetchall():
            out.setdefault(rid, set()).add(mid)
    return out


def _evaluations(url: str) -> dict[tuple[str, str], dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("select * from marts.rule_evaluations").fetchall()
    return {(r["rule_id"], r["window_name"]): r for r in rows}


def test_both_evaluation_paths_are_used(shadow_db) -> None:
    url, _, ids = shadow_db
    with psycopg.connect(url) as conn:
        kinds = dict(conn.execute("select rule_id, evaluation_kind from patas.rule_drafts").fetchall())
    assert kinds[ids["domain"]] == kinds[ids["phone_and_handle"]] == kinds[ids["code_or_handle"]] == "signal"
    assert kinds[ids["free_entry"]] == kinds[ids["win_regex"]] == kinds[ids["call_not_bot"]] == "predicate"


def test_rule_hits_equal_the_reference_evaluator(shadow_db) -> None:
    url, _, ids = shadow_db
    expected = expected_hits({ids[k]: v for k, v in RULES.items()}, MESSAGES)
    got = _hits(url)
    for key, rid in ids.items():
        assert got.get(rid, set()) == expected[rid], key
    # Spot checks against the corpus by hand.
    assert got[ids["domain"]] == {1, 2, 3}
    assert got[ids["phone_and_handle"]] == {4}
    assert got[ids["code_or_handle"]] == {9, 10, 13}
    assert got[ids["free_entry"]] == {7, 8, 9}
    assert got[ids["win_regex"]] == {1, 2}
    assert got[ids["call_not_bot"]] == {5, 6}
    assert ids["nothing"] not in got


def test_a_message_two_clauses_hit_is_one_hit(shadow_db) -> None:
    """Single-signal rules skip the clause aggregate; rules of several signals go through it, and
    a message that satisfies two clauses of one rule is still one hit (one row)."""
    url, project, ids = shadow_db
    either = {"any": [{"kind": "phone", "value": "447700900123"}, {"kind": "handle", "value": "promo_bot"}]}
    with psycopg.connect(url) as conn:
        rid = draft_rule(conn, either)
    run_shadow_evaluation(project, url, RUN_ID)
    try:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "select message_id, count(*) from marts.rule_hits where rule_id = %s group by 1 order by 1",
                (rid,),
            ).fetchall()
            domain_rows = conn.execute(
                "select count(*) from marts.rule_hits where rule_id = %s", (ids["domain"],)
            ).fetchone()[0]
            evaluation = conn.execute(
                "select hit_count, spam_hit_count from marts.rule_evaluations where rule_id = %s", (rid,)
            ).fetchone()
        assert rows == [(4, 1), (5, 1)]  # message 4 carries both signals, message 5 the phone only
        assert evaluation == (2, 2)
        assert domain_rows == 3
        expected = expected_hits({rid: either}, MESSAGES)
        assert {m for m, _ in rows} == expected[rid]
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("delete from patas.rule_signal_clauses where rule_id = %s", (rid,))
            conn.execute("delete from patas.rule_drafts where rule_id = %s", (rid,))
        run_shadow_evaluation(project, url, RUN_ID)


def test_only_the_evaluation_window_by_default(shadow_db) -> None:
    url, _, _ = shadow_db
    with psycopg.connect(url) as conn:
        windows = conn.execute("select distinct window_name from marts.rule_evaluations").fetchall()
        mining_hits = conn.execute(
            "select count(*) from marts.rule_hits where message_id in (11, 14)"
        ).fetchone()[0]
    assert windows == [("evaluation",)]
    assert mining_hits == 0


def test_metrics_equal_python_formulas(shadow_db) -> None:
    url, _, ids = shadow_db
    expected = expected_hits({ids[k]: v for k, v in RULES.items()}, MESSAGES)
    labels = {m["message_id"]: m["is_spam"] for m in MESSAGES if m["window"] == "evaluation"}
    rows = _evaluations(url)
    assert len(rows) == len(RULES)
    for rid, hit_ids in expected.items():
        row = rows[(rid, "evaluation")]
        py = mt.metrics_for_hits(hit_ids, labels).to_dict()
        for col, value in py.items():
            if value is None:
                assert row[col] is None, (rid, col)
            else:
                assert row[col] == pytest.approx(value, rel=1e-12, abs=1e-15), (rid, col)
        others = set().union(*(h for r, h in expected.items() if r != rid))
        unique = {i for i in hit_ids if labels[i] is True and i not in others}
        assert row["unique_spam_hit_count"] == len(unique), rid
        assert row["evaluated_run_id"] == RUN_ID
        assert row["rule_version"] == 1


def test_worked_numbers_for_the_domain_rule(shadow_db) -> None:
    url, _, ids = shadow_db
    row = _evaluations(url)[(ids["domain"], "evaluation")]
    # 12 evaluation messages: 7 spam, 4 ham, 1 unlabelled. The rule hits 2 spam and 1 ham.
    assert (row["window_message_count"], row["window_spam_count"], row["window_ham_count"]) == (12, 7, 4)
    assert (row["hit_count"], row["spam_hit_count"], row["ham_hit_count"]) == (3, 2, 1)
    assert row["precision"] == pytest.approx(2 / 3)
    assert row["recall"] == pytest.approx(2 / 7)
    assert row["coverage"] == pytest.approx(3 / 12)
    assert row["false_positive_rate"] == pytest.approx(1 / 4)
    assert row["precision_lower_bound"] == pytest.approx(mt.wilson_lower_bound(2, 3), rel=1e-12)
    assert row["unique_spam_hit_count"] == 0  # the regex rule catches both spam messages too
    nothing = _evaluations(url)[(ids["nothing"], "evaluation")]
    assert nothing["hit_count"] == 0 and nothing["precision"] is None
    assert nothing["precision_lower_bound"] == 0.0
    assert nothing["false_positive_rate_upper_bound"] == pytest.approx(3 / 4)  # rule of three


def test_overlaps(shadow_db) -> None:
    url, _, ids = shadow_db
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("select * from marts.rule_overlaps").fetchall()
    pairs = {(r["rule_a_id"], r["rule_b_id"]): r for r in rows}
    a, b = sorted([ids["domain"], ids["win_regex"]])
    pair = pairs[(a, b)]
    assert pair["shared_hit_count"] == 2 and pair["shared_spam_hit_count"] == 2
    assert pair["jaccard"] == pytest.approx(2 / 3)
    assert pair["containment"] == pytest.approx(1.0)
    c, d = sorted([ids["free_entry"], ids["code_or_handle"]])
    assert pairs[(c, d)]["shared_hit_count"] == 1  # message 9
    assert all(r["rule_a_id"] < r["rule_b_id"] for r in rows)
    assert len(pairs) == 2


def _overlaps_by_pairs(url: str, top_partners: int = 10) -> set[tuple]:
    """rule_overlaps as its definition reads: every pair of hits on a shared evaluation message,
    counted pair by pair with the message's effective label, kept when in either rule's top list."""
    with psycopg.connect(url) as conn:
        hits = conn.execute(
            "select rule_id, message_id from marts.rule_hits where window_name = 'evaluation'"
        ).fetchall()
        labels = dict(
            conn.execute("select message_id, is_spam from intermediate.int_messages_enriched").fetchall()
        )
        labels.update(
            conn.execute(
                "select message_id, is_spam from intermediate.int_message_labels_overridden"
            ).fetchall()
        )
    by_rule: dict[str, set[int]] = {}
    for rid, mid in hits:
        if mid in labels:
            by_rule.setdefault(rid, set()).add(mid)
    pairs = {}
    for a in by_rule:
        for b in by_rule:
            shared = by_rule[a] & by_rule[b]
            if a < b and shared:
                spam = sum(1 for m in shared if labels[m] is True)
                ham = sum(1 for m in shared if labels[m] is False)
                pairs[(a, b)] = (len(shared), spam, ham)
    ranks: dict[tuple[str, str], int] = {}
    for rid in by_rule:
        partners = [(p[0][1] if p[0][0] == rid else p[0][0], p[1][0]) for p in pairs.items() if rid in p[0]]
        partners.sort(key=lambda x: (-x[1], x[0]))
        for rank, (other, _) in enumerate(partners[:top_partners], start=1):
            key = (min(rid, other), max(rid, other))
            ranks[key] = min(ranks.get(key, rank), rank)
    out = set()
    for (a, b), (shared, spam, ham) in pairs.items():
        if (a, b) in ranks:
            na, nb = len(by_rule[a]), len(by_rule[b])
            out.add(
                (
                    a,
                    b,
                    na,
                    nb,
                    shared,
                    spam,
                    ham,
                    shared / (na + nb - shared),
                    shared / min(na, nb),
                    ranks[(a, b)],
                )
            )
    return out


def _overlaps(url: str) -> set[tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select rule_a_id, rule_b_id, rule_a_hit_count, rule_b_hit_count, shared_hit_count,"
            " shared_spam_hit_count, shared_ham_hit_count, jaccard, containment, best_partner_rank"
            " from marts.rule_overlaps where window_name = 'evaluation'"
        ).fetchall()
    return set(rows)


def test_overlaps_from_rule_sets_equal_the_pairwise_count(shadow_db) -> None:
    """rule_overlaps counts each set of rules hitting a message (with its label) once, weighted by
    its messages; that must give the rows of the pairwise count, here on many overlapping hits
    with every label (spam, ham, unlabelled, overridden) and a top list short enough to drop pairs."""
    url, project, _ = shadow_db
    assert _overlaps(url) == _overlaps_by_pairs(url)
    with psycopg.connect(url) as conn:
        mids = [
            m for (m,) in conn.execute("select message_id from intermediate.int_messages_enriched order by 1")
        ]
        rows = [
            (f"zz-{r}", m) for r in range(7) for i, m in enumerate(mids) if (i * (r + 3) + r) % 5 < 2 + r % 3
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into marts.rule_hits (rule_id, message_id, window_name) values (%s, %s, 'evaluation')",
                rows,
            )
        conn.execute(
            "insert into intermediate.int_message_labels_overridden"
            " (message_id, is_spam, override_kind, is_changed, is_reversal) values (%s, false, 'test', true, true)",
            (mids[1],),
        )
    try:
        for top in (10, 2):
            run_dbt(
                project,
                url,
                ["run", "--select", "rule_overlaps"],
                run_id=RUN_ID,
                extra_vars={"patas_overlap_partners": top},
            )
            got = _overlaps(url)
            assert got == _overlaps_by_pairs(url, top)  # the ratios too: the same two integers divided
            assert len(got) > 10
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("delete from marts.rule_hits where rule_id like 'zz-%'")
            conn.execute(
                "delete from intermediate.int_message_labels_overridden where override_kind = 'test'"
            )
        run_shadow_evaluation(project, url, RUN_ID)


def test_one_predicate_per_scan_gives_the_same_hits(shadow_db) -> None:
    url, project, _ = shadow_db
    before = _hits(url)
    run_shadow_evaluation(project, url, RUN_ID, extra_vars={"patas_predicates_per_scan": 1})
    assert _hits(url) == before
    run_shadow_evaluation(project, url, RUN_ID)


def test_mining_window_on_request(shadow_db) -> None:
    url, project, ids = shadow_db
    run_shadow_evaluation(project, url, RUN_ID, extra_vars={"patas_shadow_windows": ["mining", "evaluation"]})
    try:
        mining = _hits(url, "mining")
        assert mining[ids["domain"]] == {11}
        assert mining[ids["free_entry"]] == {14}
        assert mining[ids["win_regex"]] == {11, 14}
        rows = _evaluations(url)
        assert rows[(ids["domain"], "mining")]["window_message_count"] == 2
        assert len(rows) == 2 * len(RULES)
    finally:
        run_shadow_evaluation(project, url, RUN_ID)


def test_predicates_come_from_the_compiler(shadow_db) -> None:
    """The SQL pasted into the scan is the compiler's output, byte for byte."""
    _url, project, ids = shadow_db
    compiled = (project / "target" / "compiled").rglob("rule_hits.sql")
    sql = next(iter(compiled)).read_text()
    for key in ("free_entry", "win_regex", "call_not_bot"):
        assert rl.compile_sql_predicate(rl.parse_rule(RULES[key])) in sql
        assert f"then '{ids[key]}' end" in sql


def test_effective_labels_override_and_reversals_are_counted(shadow_db) -> None:
    """A reversal (spam -> ham) on one of the domain rule's spam hits moves it to the ham column and
    counts it in reversed_hit_count; an unlabelled message confirmed as spam joins the spam column."""
    url, project, ids = shadow_db
    hits = _hits(url)[ids["domain"]]
    with psycopg.connect(url) as conn:
        labels = dict(
            conn.execute(
                "select message_id, is_spam from intermediate.int_messages_enriched where message_id = any(%s)",
                (sorted(hits),),
            ).fetchall()
        )
        spam_hit = min(m for m, s in labels.items() if s)
        unlabelled = conn.execute(
            "select min(e.message_id) from intermediate.int_messages_enriched as e"
            " join intermediate.int_messages_windowed as w using (message_id)"
            " where e.is_spam is null and w.window_name = 'evaluation'"
        ).fetchone()[0]
        conn.execute(
            """
            insert into intermediate.int_message_labels_overridden
                (message_id, original_is_spam, is_spam, override_kind, is_changed, is_reversal)
            values (%s, true, false, 'feedback', true, true), (%s, null, true, 'feedback', true, false)
            """,
            (spam_hit, unlabelled),
        )
        conn.commit()
    try:
        run_shadow_evaluation(project, url, RUN_ID)
        row = _evaluations(url)[(ids["domain"], "evaluation")]
        assert (row["hit_count"], row["spam_hit_count"], row["ham_hit_count"]) == (3, 1, 2)
        assert row["reversed_hit_count"] == 1
        assert (row["window_spam_count"], row["window_ham_count"]) == (7, 5)  # -1 +1 spam, +1 ham
        assert row["precision"] == pytest.approx(1 / 3)
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("delete from intermediate.int_message_labels_overridden")
            conn.commit()
        run_shadow_evaluation(project, url, RUN_ID)


def test_evidence_counts_equal_a_count_per_fold(shadow_db) -> None:
    """Promotion's evidence reads the held-out hits once (ids per rule, fold and label): its counts
    and hit sets equal a plain count per rule and fold and the hit rows of the folds it uses."""
    from python_steps.lifecycle import store

    url, project, ids = shadow_db
    run_shadow_evaluation(project, url, RUN_ID, extra_vars={"patas_shadow_windows": ["mining", "evaluation"]})
    try:
        with psycopg.connect(url) as conn:
            drafts = store.latest_drafts(conn)
            rule_ids = sorted(ids.values())
            with conn.transaction():
                metrics, hit_sets = store.rule_evidence(
                    conn,
                    RUN_ID,
                    drafts,
                    rule_ids,
                    folds=2,
                    languages=("en",),
                    hits_relation="marts.rule_hits",
                )
            with conn.transaction():
                msg_ids, folds, labels = store._labelled_windows(conn, RUN_ID, 2)
                hits = conn.execute("select rule_id, window_name, message_id from marts.rule_hits").fetchall()
        fold_of = dict(zip(msg_ids.tolist(), zip(folds.tolist(), labels.tolist(), strict=True), strict=True))
        rows = [
            (rid, fold_of[mid][0], mid, fold_of[mid][1])
            for rid, window, mid in hits
            if mid in fold_of and (fold_of[mid][0] == -1) == (window == "evaluation")
        ]
        counts: dict[str, dict[int, tuple[int, int]]] = {}
        for rid, fold, _, is_spam in rows:
            spam, ham = counts.setdefault(rid, {}).get(fold, (0, 0))
            counts[rid][fold] = (spam + 1, ham) if is_spam else (spam, ham + 1)
        assert any(fold >= 0 for by_fold in counts.values() for fold in by_fold)  # mining hits counted
        for rid in rule_ids:
            by_fold = counts.get(rid, {})
            used = range(2) if metrics[rid]["evidence_folds_used"] == 2 else ()
            spam = by_fold.get(-1, (0, 0))[0] + sum(by_fold.get(f, (0, 0))[0] for f in used)
            ham = by_fold.get(-1, (0, 0))[1] + sum(by_fold.get(f, (0, 0))[1] for f in used)
            if metrics[rid]["evidence_folds_used"] in (0, 2):  # with one fold used, which one is not said
                assert (metrics[rid]["evidence_spam_hits"], metrics[rid]["evidence_ham_hits"]) == (
                    spam,
                    ham,
                ), rid
        for rid, h in hit_sets.items():
            assert h.spam | h.ham <= {m for r, _, m, _ in rows if r == rid}, rid
            assert len(h.spam) + len(h.ham) >= sum(
                by_fold for by_fold in counts.get(rid, {}).get(-1, (0, 0))
            ), rid
    finally:
        run_shadow_evaluation(project, url, RUN_ID)


def test_folds_are_every_labelled_windowed_message_once(shadow_db) -> None:
    """The folds (read with hash joins: nested loops and JIT off for that statement) hold each
    labelled message of both windows once, the evaluation window as fold -1, the mining window in
    template-hash buckets without a time split and in ntile's blocks of (event time, id) order with
    one; the planner settings are the session's again afterwards."""
    from python_steps import tables
    from python_steps.lifecycle import store

    url, _, _ = shadow_db
    with psycopg.connect(url) as conn, conn.transaction(force_rollback=True):
        before = conn.execute("select current_setting('enable_nestloop'), current_setting('jit')").fetchone()
        ids, folds, labels = store._labelled_windows(conn, RUN_ID, 2)
        after = conn.execute("select current_setting('enable_nestloop'), current_setting('jit')").fetchone()
        windowed = conn.execute(
            """
            select w.message_id, w.window_name, coalesce(m.split_bucket, m.message_id % 100) % 2, m.is_spam,
                ntile(2) over (partition by w.window_name = 'mining' order by m.event_at, m.message_id) - 1
            from intermediate.int_messages_windowed as w
            inner join intermediate.int_messages_enriched as m on m.message_id = w.message_id
            where m.is_spam is not null
            """
        ).fetchall()
        tables.ensure_all(conn)
        conn.execute(
            "insert into patas.runs (run_id, split_mode, windows) values ('run-time-folds', 'time', '{}')"
        )
        time_ids, time_folds, _ = store._labelled_windows(conn, "run-time-folds", 2)
    assert after == before
    assert list(ids) == sorted(ids) and list(time_ids) == list(ids)
    expected = {mid: (-1 if w == "evaluation" else bucket) for mid, w, bucket, _, _ in windowed}
    assert len(ids) == len(expected) and dict(zip(ids.tolist(), folds.tolist(), strict=True)) == expected
    assert {-1, 0, 1} <= set(expected.values())
    assert dict(zip(ids.tolist(), labels.tolist(), strict=True)) == {mid: s for mid, _, _, s, _ in windowed}
    by_time = {mid: (-1 if w == "evaluation" else block) for mid, w, _, _, block in windowed}
    assert dict(zip(time_ids.tolist(), time_folds.tolist(), strict=True)) == by_time
    assert {-1, 0, 1} <= set(by_time.values())


def test_labels_overridden_by_the_latest_verdict_else_an_unban(fresh_db) -> None:
    """The real int_message_labels_overridden (one scan of the messages): the latest verdict wins;
    without one, an unbanned message not labelled ham becomes ham; every other message has no row."""
    from test_shadow_eval_support import REPO_ROOT, run_dbt

    from python_steps import tables

    # (external_id, is_spam, unbanned, verdicts oldest first) -> expected (is_spam, override_kind)
    cases = {
        "spam_unbanned": (True, True, [], (False, "moderator_unbanned")),
        "unlabelled_unbanned": (None, True, [], (False, "moderator_unbanned")),
        "ham_unbanned": (False, True, [], None),
        "spam_not_unbanned": (True, False, [], None),
        "spam_unbanned_null": (True, None, [], None),
        "unbanned_then_spam_verdict": (True, True, ["spam"], (True, "feedback")),
        "two_verdicts": (None, None, ["spam", "ham"], (False, "feedback")),
    }
    with psycopg.connect(fresh_db) as conn:
        tables.ensure_all(conn)
        for n, (ext, (is_spam, unbanned, verdicts, _)) in enumerate(cases.items()):
            mid = conn.execute(
                "insert into raw.messages (external_id, text, is_spam, unbanned, batch_id, source_line)"
                " values (%s, 'hi', %s, %s, 1, %s) returning message_id",
                (ext, is_spam, unbanned, n),
            ).fetchone()[0]
            for verdict in verdicts:
                conn.execute(
                    "insert into patas.label_feedback (message_id, external_id, verdict, source, actor)"
                    " values (%s, %s, %s, 'moderator', 'test')",
                    (mid, ext, verdict),
                )
        conn.commit()
    models = ["stg_raw__messages", "stg_patas__label_feedback", "int_message_labels_overridden"]
    run_dbt(REPO_ROOT, fresh_db, ["run", "--select", *models], run_id="labels")
    with psycopg.connect(fresh_db) as conn:
        got = {
            ext: (is_spam, kind)
            for ext, is_spam, kind in conn.execute(
                "select external_id, is_spam, override_kind from intermediate.int_message_labels_overridden"
            )
        }
    assert got == {ext: case[3] for ext, case in cases.items() if case[3] is not None}
