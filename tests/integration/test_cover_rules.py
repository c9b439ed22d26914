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
from python_steps.mining.clustering import Cluster, cover_rules, standing_candidates
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
