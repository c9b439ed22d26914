"""Deterministic drafting against small stage-1 fixtures in a fresh database."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest

from python_steps.mining import drafting, signal_matrix
from python_steps.rules import evaluate, parse_rule
from python_steps.rules.sql_safety import validate_sql
from python_steps.runspec import RunSpec
from python_steps.text import substrings as subs

MAX_RULES = RunSpec().max_rules

pytestmark = pytest.mark.integration

FIXTURE_DDL = """
create schema intermediate;
create schema marts;
create table intermediate.int_messages_enriched (
    message_id bigint primary key, is_spam boolean, normalized_text text,
    phones text[] not null default '{}', short_codes text[] not null default '{}',
    urls text[] not null default '{}', handles text[] not null default '{}',
    emails text[] not null default '{}'
);
create table intermediate.test_message_windows (message_id bigint, window_name text);
create table intermediate.int_message_signals_extracted (message_id bigint, signal_kind text, signal_value text);
-- the run's windows: the messages' columns and each message's window
create view intermediate.int_messages_windowed as
select m.*, w.window_name
from intermediate.int_messages_enriched as m
inner join intermediate.test_message_windows as w on w.message_id = m.message_id;
create table marts.stage1_candidates (
    signal_kind text, signal_value text, suspiciousness_rank bigint, kept_reason text,
    spam_count bigint, ham_count bigint, unlabelled_count bigint, spam_share float8,
    log_odds float8, spam_share_lower_bound float8
);
-- stage 1's per-signal counts over the mining window (the columns drafting reads)
create view marts.signal_label_counts as
select s.signal_kind, s.signal_value,
    count(*) filter (where m.is_spam) as spam_count, count(*) filter (where not m.is_spam) as ham_count
from intermediate.int_message_signals_extracted as s
inner join intermediate.int_messages_enriched as m on m.message_id = s.message_id
inner join intermediate.int_messages_windowed as w on w.message_id = s.message_id
where w.window_name = 'mining'
group by 1, 2;
"""


def _messages() -> list[tuple[int, bool | None, list[tuple[str, str]]]]:
    """(id, is_spam, signals). Campaigns: a strong domain; a strong phrase (+ its 3-gram); a
    'free' word that is only precise together with short code 87121; ham about lunch and a ham
    that shares words with the prize campaign."""
    rows: list[tuple[int, bool | None, list[tuple[str, str]]]] = []
    mid = 0

    def add(is_spam: bool | None, *signals: tuple[str, str]) -> None:
        nonlocal mid
        mid += 1
        rows.append((mid, is_spam, list(signals)))

    for _ in range(6):
        add(True, ("domain", "win-big.example"), ("ngram", "click"), ("ngram", "now"))
    for _ in range(5):
        add(
            True,
            ("ngram", "claim"),
            ("ngram", "claim prize"),
            ("ngram", "prize"),
            ("ngram", "claim prize today"),
        )
    for _ in range(4):
        add(True, ("ngram", "free"), ("short_code", "87121"), ("ngram", "text"))
    for _ in range(3):
        add(False, ("ngram", "free"), ("ngram", "lunch"))
    add(False, ("ngram", "free"), ("ngram", "text"))
    add(False, ("ngram", "prize"), ("ngram", "lunch"), ("ngram", "click"))
    add(False, ("ngram", "click"), ("ngram", "now"), ("ngram", "lunch"))
    add(False, ("ngram", "lunch"))
    add(None, ("domain", "win-big.example"))
    add(True, ("phone", "12"))  # a value the rule language refuses: skipped, not a crash
    add(True, ("phone", "12"))
    add(True, ("phone", "12"))
    return rows


def _load(conn: psycopg.Connection) -> list[tuple[int, bool | None, list[tuple[str, str]]]]:
    return _load_rows(conn, _messages())


def _load_rows(
    conn: psycopg.Connection, rows: list[tuple[int, bool | None, list[tuple[str, str]]]]
) -> list[tuple[int, bool | None, list[tuple[str, str]]]]:
    """The fixture tables with these (id, is_spam, signals) messages and their stage-1 candidates."""
    conn.execute(FIXTURE_DDL)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into intermediate.int_messages_enriched values (%s, %s)", [(m, s) for m, s, _ in rows]
        )
        cur.executemany(
            "insert into intermediate.test_message_windows values (%s, 'mining')", [(m,) for m, _, _ in rows]
        )
        cur.executemany(
            "insert into intermediate.int_message_signals_extracted values (%s, %s, %s)",
            [(m, k, v) for m, _, sigs in rows for k, v in sigs],
        )
        spam, ham, unl = Counter(), Counter(), Counter()
        for _, is_spam, sigs in rows:
            for s in sigs:
                (spam if is_spam else ham if is_spam is False else unl)[s] += 1
        cands = sorted(set(spam) | set(ham))
        cur.executemany(
            "insert into marts.stage1_candidates values (%s, %s, %s, 'top_fraction', %s, %s, %s, %s, 0, 0)",
            [
                (
                    k,
                    v,
                    i,
                    spam[(k, v)],
                    ham[(k, v)],
                    unl[(k, v)],
                    spam[(k, v)] / max(1, spam[(k, v)] + ham[(k, v)]),
                )
                for i, (k, v) in enumerate(cands)
            ],
        )
    return rows


@pytest.fixture()
def conn(fresh_db: str):
    with psycopg.connect(fresh_db, autocommit=True) as c:
        yield c


def test_drafts_entities_phrases_and_conjunctions(conn: psycopg.Connection) -> None:
    rows = _load(conn)
    drafts = drafting.draft_rules(conn, run_id="run-1", max_rules=MAX_RULES)
    by_desc = {d.description: d for d in drafts}
    assert "domain = win-big.example" in by_desc
    assert 'text has phrase "claim"' in by_desc
    assert "short code = 87121" in by_desc
    # "claim" is a common word (wordfreq): drafted for review, it never activates alone, so it does
    # not subsume the longer phrase "claim prize" and it gets a partner ("claim" AND "prize");
    # "claim prize today" is subsumed by "claim prize", an existing phrase rule that stands alone.
    assert 'text has phrase "claim prize"' in by_desc
    assert 'text has phrase "claim" AND text has phrase "prize"' in by_desc
    assert not any("claim prize today" in d for d in by_desc)
    # 'free' alone is 4 spam / 4 ham: drafted only as a conjunction, but its partner 87121 is a
    # rule by itself, so the conjunction is subsumed; 'prize' (5/1) gets no precise partner
    assert 'text has phrase "free"' not in by_desc
    assert [d.rule_id for d in drafts] == sorted(d.rule_id for d in drafts)
    for d in drafts:
        assert validate_sql(d.sql_expression, mode="predicate").ok
        assert d.evaluation_kind == "signal" and d.clauses
        assert parse_rule(d.rule_json) == d.rule
        # the drafted rule hits, on the fixture, exactly what its stage-1 counts say
        hits = [
            (is_spam)
            for _, is_spam, sigs in rows
            if any(all((k, v) in sigs for _, k, v in d.clauses if _ == no) for no, _, _ in d.clauses)
        ]
        assert hits.count(True) == d.spam_count and hits.count(False) == d.ham_count, d.description
    assert evaluate(by_desc["domain = win-big.example"].rule, {"domains": ["win-big.example"]})


def test_conjunction_when_single_signal_is_not_precise(conn: psycopg.Connection) -> None:
    _load(conn)
    cfg = drafting.DraftingConfig(partner_kinds=("ngram",))  # 87121 cannot be the partner
    # Remove the short-code candidate so 'free' must find another partner: 'text' (4 spam, 1 ham
    # with free) is not precise enough; nothing else co-occurs -> no conjunction for 'free'.
    conn.execute("delete from marts.stage1_candidates where signal_kind = 'short_code'")
    drafts = drafting.draft_rules(conn, run_id="r", max_rules=MAX_RULES, config=cfg)
    assert not any("free" in d.description for d in drafts)
    cfg = drafting.DraftingConfig(partner_kinds=("short_code",))
    drafts = drafting.draft_rules(conn, run_id="r", max_rules=MAX_RULES, config=cfg)
    conj = sorted((d for d in drafts if "AND" in d.description), key=lambda d: d.description)
    # 'free' (4 spam, 4 ham) and 'text' (4 spam, 1 ham) each become precise with 87121
    assert [d.description for d in conj] == [
        'short code = 87121 AND text has phrase "free"',
        'short code = 87121 AND text has phrase "text"',
    ]
    assert conj[0].spam_count == 4 and conj[0].ham_count == 0 and conj[0].complexity == 4
    assert conj[0].clauses == [(1, "ngram", "free"), (1, "short_code", "87121")]


def _table(conn: psycopg.Connection, sql: str) -> list[tuple]:
    return conn.execute(sql).fetchall()


def test_write_is_idempotent_and_byte_identical(conn: psycopg.Connection) -> None:
    _load(conn)
    drafts = drafting.draft_rules(conn, run_id="run-1", max_rules=MAX_RULES)
    first = drafting.write_drafts(conn, drafts, "run-1")
    assert first["versions_inserted"] == len(drafts) > 0
    snap = (
        _table(conn, "select rule_id, version, rule_json::text, rule_canonical, description, sql_expression, regex, "
               "origin, pattern_id, evaluation_kind, complexity, drafted_run_id from patas.rule_drafts order by 1, 2"),
        _table(conn, "select * from patas.rule_signal_clauses order by 1, 2, 3, 4"),
        _table(conn, "select rule_id, example_kind, rank, message_id, shared_signal_count "
               "from patas.rule_counterexamples order by 1, 2, 3"),
    )  # fmt: skip
    again = drafting.draft_rules(conn, run_id="run-2", max_rules=MAX_RULES)
    assert again == drafts
    second = drafting.write_drafts(conn, again, "run-2")
    assert second["versions_inserted"] == 0
    assert snap == (
        _table(conn, "select rule_id, version, rule_json::text, rule_canonical, description, sql_expression, regex, "
               "origin, pattern_id, evaluation_kind, complexity, drafted_run_id from patas.rule_drafts order by 1, 2"),
        _table(conn, "select * from patas.rule_signal_clauses order by 1, 2, 3, 4"),
        _table(conn, "select rule_id, example_kind, rank, message_id, shared_signal_count "
               "from patas.rule_counterexamples order by 1, 2, 3"),
    )  # fmt: skip
    drafting.ensure_schema(conn)  # idempotent DDL


def test_counterexamples(conn: psycopg.Connection) -> None:
    _load(conn)
    drafts = drafting.draft_rules(conn, run_id="run-1", max_rules=MAX_RULES)
    drafting.write_drafts(conn, drafts, "run-1")
    rid = {d.description: d.rule_id for d in drafts}
    rows = conn.execute(
        "select example_kind, rank, message_id, shared_signal_count from patas.rule_counterexamples "
        "where rule_id = %s order by 1, 2",
        (rid["domain = win-big.example"],),
    ).fetchall()
    # no ham carries the domain; the nearest ham shares 'click' and 'now' (message 21), then 'click' (20)
    assert rows == [("nearest_unmatched_ham", 1, 21, 2), ("nearest_unmatched_ham", 2, 20, 1)]
    phrase_rows = conn.execute(
        "select example_kind, message_id from patas.rule_counterexamples where rule_id = %s order by 1, 2",
        (rid['text has phrase "claim"'],),
    ).fetchall()
    assert phrase_rows == [("nearest_unmatched_ham", 20)]  # shares 'prize'


def test_the_window_read_once_gives_the_same_drafts_and_counterexamples(conn: psycopg.Connection) -> None:
    """The drafting step reads the labelled mining window once (signal_matrix.load) and hands it to
    drafting and to the counter-examples: the same rows as when each reads it itself."""
    _load(conn)
    drafts = drafting.draft_rules(conn, run_id="run-1", max_rules=MAX_RULES)
    drafting.write_drafts(conn, drafts, "run-1")
    query = "select rule_id, example_kind, rank, message_id, shared_signal_count from patas.rule_counterexamples order by 1, 2, 3"
    alone = conn.execute(query).fetchall()
    signals = signal_matrix.load(conn)
    assert [m for m in signals.message_ids.tolist()] == sorted(m for m, s, _ in _messages() if s is not None)
    shared = drafting.draft_rules(conn, run_id="run-2", max_rules=MAX_RULES, signals=signals)
    assert shared == drafts
    drafting.write_drafts(conn, shared, "run-2", signals=signals)
    assert conn.execute(query).fetchall() == alone and alone


def test_the_window_read_leaves_the_session_planner_settings(conn: psycopg.Connection) -> None:
    """The window's read plans with more work_mem and without JIT (warehouse.planner_settings) and
    puts back the values the session had, its own settings included; only planner settings PATAS
    names can be changed that way."""
    from python_steps.warehouse import planner_settings

    _load(conn)
    conn.execute("set work_mem = '7MB'")
    conn.execute("set jit = on")
    settings = "select current_setting('work_mem'), current_setting('jit')"
    inside = []
    with planner_settings(conn, work_mem="64MB", jit="off"):
        inside.append(conn.execute(settings).fetchone())
    assert inside == [("64MB", "off")]
    assert conn.execute(settings).fetchone() == ("7MB", "on")
    signal_matrix.load(conn)
    assert conn.execute(settings).fetchone() == ("7MB", "on")
    with pytest.raises(ValueError, match="not a planner setting"), planner_settings(conn, search_path="evil"):
        pass


def test_signals_missing_from_stage_1_counts_are_an_error(conn: psycopg.Connection) -> None:
    """A signal of the mining window that stage 1's counts lack (stage 1 built on other windows or
    data) stops drafting instead of silently dropping its co-occurrences."""
    _load(conn)
    conn.execute("create table marts.counts_kept as select * from marts.signal_label_counts")
    conn.execute("drop view marts.signal_label_counts")
    conn.execute(
        "create view marts.signal_label_counts as select * from marts.counts_kept where signal_value <> 'lunch'"
    )
    with pytest.raises(RuntimeError, match="lacks signals of the mining window"):
        signal_matrix.load(conn)


def test_max_rules_and_complexity_budget(conn: psycopg.Connection) -> None:
    _load(conn)
    assert len(drafting.draft_rules(conn, run_id="r", max_rules=1)) == 1
    cfg = drafting.DraftingConfig(max_complexity=2, partner_kinds=("short_code",))
    conn.execute("delete from marts.stage1_candidates where signal_kind = 'short_code'")
    assert all(
        d.complexity <= 2 for d in drafting.draft_rules(conn, run_id="r", max_rules=MAX_RULES, config=cfg)
    )


def test_generalizations_phone_ranges_and_entity_presence(conn: psycopg.Connection) -> None:
    """Phone prefixes and "has a <kind>" are counted from the entity arrays of the mining window:
    the shortest strong prefix of a range wins, a kind is drafted only when it is itself precise."""
    conn.execute(FIXTURE_DDL)
    messages = [
        # (is_spam, phones, short_codes): one campaign rotating numbers of one premium range
        (True, ["08712402779"], []),
        (True, ["08712402972"], ["80488"]),
        (True, ["08712402578"], ["80488"]),
        (True, ["08719181513"], ["80488"]),
        (True, ["09061701461"], []),  # a range with two spam numbers: below the spam minimum
        (True, ["09066612345"], ["69876"]),
        (False, ["08001234567"], []),  # legitimate numbers in ham
        (False, ["02070836089"], []),
        (False, [], []),
        (None, ["08710000000"], ["80488"]),  # unlabelled: not counted
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into intermediate.int_messages_enriched (message_id, is_spam, phones, short_codes) "
            "values (%s, %s, %s, %s)",
            [(i, s, p, c) for i, (s, p, c) in enumerate(messages, start=1)],
        )
        cur.executemany(
            "insert into intermediate.test_message_windows values (%s, 'mining')",
            [(i,) for i in range(1, len(messages) + 1)],
        )
    drafts = drafting.draft_rules(conn, run_id="g", max_rules=MAX_RULES)
    by_desc = {d.description: d for d in drafts}
    # "087" covers 4 spam numbers and no ham; "0871"/"08712" are inside it; "08" hits the 0800 ham;
    # "090x" has only 2 spam; a phone alone is in 2 of 8 ham-or-spam messages that are ham
    assert sorted(by_desc) == ["has a short code", "phone starts with 087"]
    for d in drafts:
        assert d.evaluation_kind == "predicate" and d.clauses is None
        assert d.pattern_id.startswith("generalization:")
        assert validate_sql(d.sql_expression, mode="predicate").ok
        hits = [
            s for s, p, c in messages if s is not None and evaluate(d.rule, {"phones": p, "short_codes": c})
        ]
        assert (hits.count(True), hits.count(False)) == (d.spam_count, d.ham_count), d.description
    assert (by_desc["phone starts with 087"].spam_count, by_desc["has a short code"].spam_count) == (4, 4)
    cfg = drafting.DraftingConfig(phone_prefix_lengths=(), presence_kinds=())
    assert drafting.draft_rules(conn, run_id="g", max_rules=MAX_RULES, config=cfg) == []


def test_phrases_outside_the_ngram_vocabulary_are_evaluated_as_predicates(conn: psycopg.Connection) -> None:
    """The extractor keeps ngram rows only for vocabulary n-grams; a phrase rule outside it (from
    stage 2, an LLM or a person) would see no message through the signal path, ham included."""
    _load(conn)
    known = drafting._make({"kind": "text_phrase", "value": "lunch"}, "manual", 0, 4)
    unknown = drafting._make({"kind": "text_phrase", "value": "lunch menu"}, "manual", 0, 0)
    both = drafting._make(
        {"all": [{"kind": "text_phrase", "value": "claim"}, {"kind": "text_phrase", "value": "gift card"}]},
        "manual",
        0,
        0,
    )
    assert known and unknown and both
    assert {known.evaluation_kind, unknown.evaluation_kind, both.evaluation_kind} == {"signal"}
    assert drafting.ngram_vocabulary(conn, ["lunch", "lunch menu", "claim", "gift card"]) == {
        "lunch",
        "claim",
    }
    drafting.write_drafts(conn, [known, unknown, both], "run-v")
    stored = dict(conn.execute("select rule_id, evaluation_kind from patas.rule_drafts").fetchall())
    assert stored == {known.rule_id: "signal", unknown.rule_id: "predicate", both.rule_id: "predicate"}
    clauses = {r[0] for r in conn.execute("select distinct rule_id from patas.rule_signal_clauses")}
    assert clauses == {known.rule_id}


def _load_texts(conn: psycopg.Connection, spam: list[str], ham: list[str]) -> None:
    """Labelled mining-window messages with their normalized text (no signals)."""
    rows = [(i + 1, True, t) for i, t in enumerate(spam)] + [
        (len(spam) + i + 1, False, t) for i, t in enumerate(ham)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into intermediate.int_messages_enriched (message_id, is_spam, normalized_text) "
            "values (%s, %s, %s)",
            rows,
        )
        cur.executemany(
            "insert into intermediate.test_message_windows values (%s, 'mining')", [(m,) for m, _, _ in rows]
        )


def test_unspaced_text_drafts_recurring_substrings(conn: psycopg.Connection) -> None:
    """Thai puts no space between words: a word the spam shares inside varied clauses becomes a
    ``text_contains`` rule; fragments ham also uses do not; Latin text gives no substring rule."""
    conn.execute(FIXTURE_DDL)
    spam = [
        "สมัครคาสิโนออนไลน์วันนี้",  # "apply casino online today"
        "เล่นคาสิโนออนไลน์ได้เงินจริง",
        "โปรโมชั่นคาสิโนออนไลน์ฟรี",
        "คาสิโนออนไลน์แจกเครดิต",
        "win big today",
        "win big now",
        "win big prize",
    ]
    ham = ["สมัครสมาชิกวันนี้", "โปรโมชั่นร้านกาแฟ", "วันนี้ฝนตก", "big meeting today"]
    _load_texts(conn, spam, ham)
    drafts = drafting.draft_rules(conn, run_id="r1", max_rules=MAX_RULES)
    contains = [d for d in drafts if d.rule_json.get("kind") == "text_contains"]
    assert contains, [d.description for d in drafts]
    for d in contains:
        value = d.rule_json["value"]
        assert value in "คาสิโนออนไลน์", value  # a piece of the shared word, nothing around it
        assert not any(value in h for h in ham)
        assert d.spam_count == 4 and d.ham_count == 0 and d.evaluation_kind == "predicate"
        assert d.sql_expression.startswith("strpos(")
    # one rule: longer pieces of the same word hit a subset of the shortest kept one
    assert len(contains) == 1
    assert drafting.draft_rules(conn, run_id="r2", max_rules=MAX_RULES) == drafts  # deterministic


def test_unspaced_messages_are_the_first_of_the_labelled_mining_window_in_message_order(
    conn: psycopg.Connection,
) -> None:
    """The unspaced-text read (from the window view alone): the labelled mining-window messages
    that hold unspaced text, in message order, cut at the limit; spaced text is left out."""
    conn.execute(FIXTURE_DDL)
    spam = ["สมัครคาสิโนออนไลน์วันนี้", "win big today", "คาสิโนออนไลน์แจกเครดิต", "โปรโมชั่นคาสิโนออนไลน์ฟรี"]
    ham = ["วันนี้ฝนตก", "big meeting today", "โปรโมชั่นร้านกาแฟ"]
    _load_texts(conn, spam, ham)
    want = [
        (int(m), t, bool(s))
        for m, t, s in conn.execute(
            """
            select m.message_id, m.normalized_text, m.is_spam
            from intermediate.int_messages_enriched as m
            inner join intermediate.test_message_windows as w on w.message_id = m.message_id
            where w.window_name = 'mining' and m.is_spam is not null and m.normalized_text ~ %s
            order by m.message_id
            """,
            (subs.UNSPACED_CLASS_POSTGRES,),
        ).fetchall()
    ]
    assert len(want) == 5  # the Thai texts, spam and ham; "win big today" is spaced
    for limit in (2, 100):
        got = drafting._unspaced_messages(conn, drafting.DraftingConfig(max_substring_messages=limit))
        assert got == want[:limit]


def test_a_substring_precise_only_thanks_to_an_edge_character_is_marked(conn: psycopg.Connection) -> None:
    """ "ฝากเข้า" ("deposit into") recurs in spam and never in ham, but without its first letter
    ("ากเข้า", as in "มากเข้า", "many enter") ham uses it: the rule is precise only thanks to one
    edge character. Drafting still drafts it, marked ``substring_edge:`` (promotion's sceptical
    kind); a substring whose cores are as clean as itself keeps the plain ``substring:`` mark."""
    conn.execute(FIXTURE_DDL)
    spam = [
        "โปรฝากเข้าวันนี้",
        "รีบฝากเข้าฟรี",
        "ฝากเข้าเลยครับ",
        "สมัครคาสิโนออนไลน์วันนี้",
        "เล่นคาสิโนออนไลน์ได้เงินจริง",
        "คาสิโนออนไลน์แจกเครดิต",
    ]
    ham = ["ลูกค้ามากเข้าร้าน", "คนมากเข้าชมงาน", "วันนี้ฝนตก"]
    _load_texts(conn, spam, ham)
    drafts = drafting.draft_rules(conn, run_id="r1", max_rules=MAX_RULES)
    marks = {d.rule_json["value"]: d.pattern_id for d in drafts if d.rule_json.get("kind") == "text_contains"}
    edge = {v for v, p in marks.items() if p.startswith("substring_edge:")}
    plain = {v for v, p in marks.items() if p == f"substring:{v}"}
    assert edge == {"ฝากเข้า"}, marks
    assert plain and all(v in "คาสิโนออนไลน์" for v in plain), marks
    assert edge | plain == set(marks)


def test_phrases_that_spell_part_of_a_link_are_not_drafted(conn: psycopg.Connection) -> None:
    """ "https lin" from https://lin.ee/... is the link shortener's domain, which the domain signal
    judges; as a phrase it would pass for rare words. No phrase or conjunction partner holding a
    word of a link's own syntax is drafted; the same counts on ordinary words are."""
    sigs = [
        ("ngram", "https lin"),
        ("ngram", "https"),
        ("ngram", "lin"),
        ("ngram", "bonus"),
        ("domain", "lin.ee"),
    ]
    rows = [(i + 1, True, sigs) for i in range(5)] + [(6, False, [("domain", "lin.ee"), ("ngram", "lin")])]
    _load_rows(conn, rows)
    drafts = drafting.draft_rules(conn, run_id="r1", max_rules=MAX_RULES)
    described = [d.description for d in drafts]
    assert not any("https" in d for d in described), described
    assert any(d.rule_json == {"kind": "text_phrase", "value": "bonus"} for d in drafts), described
    assert (
        drafting.spells_link("https lin")
        and drafting.spells_link("www")
        and not drafting.spells_link("lin ee")
    )


def test_a_conjunction_base_gets_a_substring_partner_in_unspaced_text(conn: psycopg.Connection) -> None:
    """A link shortener that ham uses too is only a conjunction base, and Thai text gives it no
    word partner (its n-grams are whole clauses): the partner is a substring of its own spam.
    "เครดิตฟรี" ("free credit") alone is in two ham, so no rule on its own; with the shortener it is
    in six spam and no ham."""
    conn.execute(FIXTURE_DDL)
    spam = [
        "รับเครดิตฟรีวันนี้",
        "แจกเครดิตฟรีทุกวัน",
        "สมัครรับเครดิตฟรีเลย",
        "เครดิตฟรีไม่ต้องฝาก",
        "กดรับเครดิตฟรีด่วน",
        "โปรเครดิตฟรีห้าร้อย",
    ]
    ham = ["ติดตามพัสดุของคุณ", "ดูรายละเอียดในแอป", "อ่านข่าววันนี้", "ลงทะเบียนงานสัมมนา"]
    ham_credit = ["บัตรเครดิตฟรีค่าธรรมเนียม", "เครดิตฟรีค่าส่งสำหรับสมาชิก"]
    _load_texts(conn, spam, ham + ham_credit)
    shortener = range(1, len(spam) + len(ham) + 1)  # every spam and the first four ham
    with conn.cursor() as cur:
        cur.executemany(
            "insert into intermediate.int_message_signals_extracted values (%s, 'domain', 'bit.ly')",
            [(m,) for m in shortener],
        )
        cur.execute(
            "insert into marts.stage1_candidates values ('domain', 'bit.ly', 1, 'top_fraction', 6, 4, 0, 0.6, 0, 0)"
        )
    drafts = drafting.draft_rules(conn, run_id="r1", max_rules=MAX_RULES)
    pairs = [d for d in drafts if "all" in d.rule_json]
    assert [d.rule_json for d in pairs] == [
        {
            "all": [
                {"kind": "domain", "op": "eq", "value": "bit.ly"},
                {"kind": "text_contains", "value": "เครดิตฟรี"},
            ]
        }
    ], [d.description for d in drafts]
    assert (pairs[0].spam_count, pairs[0].ham_count, pairs[0].evaluation_kind) == (6, 0, "predicate")
    assert not any(d.rule_json == {"kind": "text_contains", "value": "เครดิตฟรี"} for d in drafts)
    assert drafting.draft_rules(conn, run_id="r2", max_rules=MAX_RULES) == drafts  # deterministic
