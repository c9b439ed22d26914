"""Stage 2's pooled rule for a campaign that paraphrases (``clustering.cover_rules``) on a real
Postgres: ``any`` of the campaign's own phrases, none seen in ham, together covering the spam
stage 1 leaves uncovered; one rule for a campaign split over several clusters; nothing when one
phrase already covers it, nor for spam a standing stage-1 signal covers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from test_shadow_eval_support import create_database, create_fixture, drop_database, message

from python_steps import rules as rl
from python_steps.mining.clustering import (
    SLICE_SETTINGS,
    Cluster,
    ClusterConfig,
    counter_example_texts,
    cover_rules,
    load_slice,
    standing_candidates,
)
from python_steps.mining.drafting import DraftingConfig
from python_steps.text.common_words import phrase_is_common

pytestmark = pytest.mark.integration

# One offer in four wordings (each wording 3 times); the words that tie them are the campaign's own.
WORDINGS = (
    "we are hiring assistants to work from home",
    "earn a second income from your sofa today",
    "home based helpers wanted with weekly pay",
    "make extra money online without experience",
)
PARA = [message(10 + i, f"{WORDINGS[i % 4]} ref{i}", True, "mining") for i in range(12)]
OTHER_SPAM = [
    message(40 + i, f"win a prize online {w} today", True, "mining") for i, w in enumerate("abcdef")
]
HAM = [
    message(60, "can we work from home on friday", False, "mining"),
    message(61, "my weekly pay came in", False, "mining"),
    message(62, "lunch today", False, "mining"),
]
SAME = [message(80 + i, f"txt win to the draw now {w}", True, "mining") for i, w in enumerate("abcdef")]
# A campaign in slots: two openers x three offers, twice each. Clustered by opener (as character
# n-grams would), its two clusters share no opener; the offers, said the same few ways in both,
# tie them into one family.
OPENERS = ("dear reader zorbly", "hello visitor quimbo")
OFFERS = ("passive profits await", "private investment club", "deposits multiply weekly")
SLOTS = [
    message(100 + 6 * r + 3 * o + f, f"{OPENERS[o]} {OFFERS[f]}", True, "mining")
    for r in range(2)
    for o in range(2)
    for f in range(3)
]

LABEL_COUNTS = """
create schema if not exists marts;
create table marts.signal_label_counts as
select s.signal_kind, s.signal_value,
    count(*) filter (where m.is_spam) as spam_count, count(*) filter (where m.is_spam is false) as ham_count
from intermediate.int_message_signals_extracted as s
join intermediate.int_messages_enriched as m using (message_id)
group by 1, 2;
create table marts.stage1_candidates as
select * from marts.signal_label_counts where spam_count >= 3 and spam_count > ham_count;
"""
# Each wording is written 3 times: below a drafting bar of 4 spam, so no phrase of the campaign is a
# stage-1 rule on its own (the campaign is uncovered); "txt win to the draw" (6 spam) stands.
BAR = DraftingConfig(min_spam_count=4)


@pytest.fixture(scope="module")
def conn(server_url: str) -> Iterator[psycopg.Connection]:
    name = f"patas_cover_{os.getpid()}"
    url = create_database(server_url, name)
    with psycopg.connect(url) as c:
        create_fixture(c, PARA + OTHER_SPAM + HAM + SAME + SLOTS)
        c.execute(LABEL_COUNTS)
        c.commit()
        yield c
    drop_database(server_url, name)


def test_a_paraphrasing_cluster_gets_any_of_its_own_clean_phrases(conn: psycopg.Connection) -> None:
    cluster = Cluster("c_para", [m["message_id"] for m in PARA])
    (proposal,) = cover_rules(conn, [cluster], drafting=BAR)
    assert proposal["cluster_id"] == "c_para" and proposal["cluster_size"] == len(PARA)
    phrases = [p["value"] for p in proposal["rule"]["any"]]
    assert 2 <= len(phrases) <= 8 and phrases == sorted(phrases)
    # Never a phrase seen in ham ("work from home", "weekly pay"), nor one other spam shares
    # more than the campaign does ("online", "today").
    ham_words = {w for m in HAM for w in m["normalized_text"].split()}
    assert not any(set(p.split()) <= ham_words for p in phrases), phrases
    assert "online" not in phrases and "today" not in phrases
    everyday = [p for p in phrases if " " not in p and phrase_is_common(p, ("en",))]
    assert not everyday, "a single common word is weak evidence, pooled or not"
    rule = rl.parse_rule(proposal["rule"])
    hit = [m for m in PARA + OTHER_SPAM + HAM if rl.evaluate(rule, m)]
    assert {m["message_id"] for m in hit} == {m["message_id"] for m in PARA}


def test_a_campaign_split_over_clusters_gets_one_rule(conn: psycopg.Connection) -> None:
    """The slot campaign's two opener clusters are one family: one pooled rule covering both, with
    the lineage of the first; alone, each opener covers its own cluster (no pooled rule); a
    cluster of other spam that a standing signal covers does not join."""
    bar = DraftingConfig(min_spam_count=7)  # an opener (6 spam) is no stage-1 rule on its own
    by_opener = [[m["message_id"] for m in SLOTS if (m["message_id"] - 100) % 6 // 3 == o] for o in (0, 1)]
    a, b = Cluster("c_a", by_opener[0]), Cluster("c_b", by_opener[1])
    assert [cover_rules(conn, [c], drafting=bar) for c in (a, b)] == [[], []]
    together = cover_rules(conn, [a, b, Cluster("c_same", [m["message_id"] for m in SAME])], drafting=bar)
    assert len(together) == 1, together
    assert together[0]["cluster_id"] == "c_a" and together[0]["cluster_size"] == len(SLOTS)
    rule = rl.parse_rule(together[0]["rule"])
    everything = PARA + OTHER_SPAM + HAM + SAME + SLOTS
    assert {m["message_id"] for m in everything if rl.evaluate(rule, m)} == {m["message_id"] for m in SLOTS}


def test_a_cluster_one_phrase_covers_gets_no_pooled_rule(conn: psycopg.Connection) -> None:
    assert cover_rules(conn, [Cluster("c_same", [m["message_id"] for m in SAME])], drafting=BAR) == []
    assert cover_rules(conn, [Cluster("c_tiny", [10, 11, 12])], drafting=BAR) == []


def test_standing_candidates_leave_everyday_words_and_rare_phrasings_out(conn: psycopg.Connection) -> None:
    kinds, values = standing_candidates(conn, BAR)
    standing = set(zip(kinds, values, strict=True))
    assert ("ngram", "txt") in standing  # 6 spam, no ham, not an everyday word
    assert ("ngram", "draw") not in standing and ("ngram", "win") not in standing  # everyday words
    assert not any(v in {"hiring assistants", "second income"} for _, v in standing)  # 3 spam < 4


# The slice query as it was written first (one join of every signal row with the label counts and
# the standing candidates); load_slice scores each signal first and reads the texts by id after.
REFERENCE_SLICE_SQL = """
with standing as (
    select * from unnest(%(kinds)s::text[], %(values)s::text[]) as t (signal_kind, signal_value)
),
window_messages as (
    select m.message_id, m.external_id, m.normalized_text, m.signature, m.is_spam
    from intermediate.int_messages_enriched as m
    inner join intermediate.int_messages_windowed as w using (message_id)
    where w.window_name = 'mining'
),
scores as (
    select s.message_id, max(c.spam_share_lower_bound) as score,
        bool_or(st.signal_kind is not null) as covered
    from intermediate.int_message_signals_extracted as s
    inner join window_messages as wm using (message_id)
    inner join marts.signal_label_counts as c
        on c.signal_kind = s.signal_kind and c.signal_value = s.signal_value
    left join standing as st
        on st.signal_kind = s.signal_kind and st.signal_value = s.signal_value
    where c.log_odds > 0
    group by s.message_id
),
ranked as (
    select wm.*, coalesce(sc.score, 0)::float8 as score,
        (coalesce(wm.is_spam, false) and not coalesce(sc.covered, false)) as uncovered,
        (u.message_id is not null) as no_candidate,
        row_number() over (order by coalesce(sc.score, 0) desc, md5(wm.external_id), wm.message_id) as score_rank,
        count(*) over () as window_count
    from window_messages as wm
    left join scores as sc using (message_id)
    left join marts.stage1_uncovered_spam as u using (message_id)
),
sliced as (
    select * from ranked where score_rank <= ceil(%(pct)s / 100.0 * window_count) or uncovered
)
select message_id, external_id, normalized_text, signature, is_spam, score, uncovered,
    count(*) over (), count(*) filter (where uncovered) over (), count(*) filter (where no_candidate) over ()
from sliced
order by uncovered desc, score_rank
limit %(sample)s
"""


def test_the_slice_matches_the_one_join_query_and_restores_the_planner_settings(
    conn: psycopg.Connection,
) -> None:
    """load_slice (per-signal scores first, hash joins, texts by id) picks the same messages with the
    same figures as the first formulation of the query, uncovered spam included; its planner
    settings end with it."""
    show = "select " + ", ".join(f"current_setting('{n}')" for n in SLICE_SETTINGS)
    with conn.transaction(force_rollback=True):
        conn.execute(
            """
            alter table marts.signal_label_counts
                add column spam_share_lower_bound float8, add column log_odds float8;
            update marts.signal_label_counts
                set spam_share_lower_bound = (spam_count + 1.0) / (spam_count + ham_count + 2),
                    log_odds = ln((spam_count + 1.0) / (ham_count + 1.0));
            create table marts.stage1_uncovered_spam as
                select message_id from intermediate.int_messages_enriched where is_spam and message_id % 3 = 0;
            """
        )
        kinds, values = standing_candidates(conn, BAR)
        conn.execute("set local work_mem = '8MB'")  # a caller's own value is the one restored
        before = conn.execute(show).fetchone()
        for pct, sample in ((1.0, 4000), (10.0, 4000), (50.0, 7), (100.0, 4000)):
            got, figures = load_slice(
                conn, ClusterConfig(slice_percent=pct, sample_size=sample, drafting=BAR)
            )
            assert conn.execute(show).fetchone() == before
            rows = conn.execute(
                REFERENCE_SLICE_SQL, {"pct": pct, "sample": sample, "kinds": kinds, "values": values}
            ).fetchall()
            assert [(m.message_id, m.external_id, m.normalized_text, m.signature, m.is_spam, m.score, m.uncovered)
                    for m in got] == sorted(r[:7] for r in rows)  # fmt: skip
            assert (
                figures["slice_messages"],
                figures["uncovered_spam"],
                figures["no_candidate_spam"],
            ) == rows[0][7:]
            assert any(m.uncovered for m in got) and len(got) == min(sample, rows[0][7])


# The counter-example query as it was first written (one join of the phrases' signal rows with the
# messages, grouped per cluster and message text): the reference for counter_example_texts.
COUNTER_EXAMPLES_ONE_JOIN = """
with words as (
    select * from unnest(%s::int[], %s::text[]) as w (cluster_no, phrase)
),
ham as (
    select w.cluster_no, m.message_id, m.text, m.external_id, count(*) as shared
    from words as w
    inner join intermediate.int_message_signals_extracted as s
        on s.signal_kind = 'ngram' and s.signal_value = w.phrase
    inner join intermediate.int_messages_enriched as m on m.message_id = s.message_id
    where m.is_spam is false
    group by w.cluster_no, m.message_id, m.text, m.external_id
),
ranked as (
    select cluster_no, text,
        row_number() over (partition by cluster_no order by shared desc, external_id) as pos
    from ham
)
select cluster_no, text from ranked where pos <= %s order by cluster_no, pos
"""


@pytest.mark.parametrize("examples", [1, 2, 3])
def test_counter_examples_match_the_one_join_query(conn: psycopg.Connection, examples: int) -> None:
    """Ham sharing phrases with a cluster, ranked by how many it shares, ties by external id;
    a phrase twice in a cluster counts twice; a cluster whose phrases no ham has gets none."""
    wanted = [
        (0, "work"), (0, "from"), (0, "home"), (0, "home"),
        (1, "weekly"), (1, "pay"), (1, "today"),
        (2, "zorbly"),
        (3, "today"), (3, "lunch"), (3, "work"),
    ]  # fmt: skip
    want = conn.execute(
        COUNTER_EXAMPLES_ONE_JOIN, ([i for i, _ in wanted], [p for _, p in wanted], examples)
    ).fetchall()
    got = counter_example_texts(conn, wanted, examples)
    assert got == want
    assert {no for no, _ in want} == {0, 1, 3}, "the fixture has ham for every cluster but the third"
    ranked = ["lunch today", "can we work from home on friday"]  # 2 phrases shared, then 1
    assert [t for no, t in want if no == 3][:2] == ranked[:examples]
