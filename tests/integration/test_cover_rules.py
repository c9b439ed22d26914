"""Stage 2's pooled rule for a campaign that paraphrases (``clustering.cover_rules``) on a real
Postgres: ``any`` of the cluster's own phrases, none seen in ham, together covering the cluster;
nothing when one phrase already covers it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from test_shadow_eval_support import create_database, create_fixture, drop_database, message

from python_steps import rules as rl
from python_steps.mining.clustering import Cluster, cover_rules

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

LABEL_COUNTS = """
create schema if not exists marts;
create table marts.signal_label_counts as
select s.signal_kind, s.signal_value,
    count(*) filter (where m.is_spam) as spam_count, count(*) filter (where m.is_spam is false) as ham_count
from intermediate.int_message_signals_extracted as s
join intermediate.int_messages_enriched as m using (message_id)
group by 1, 2;
"""


@pytest.fixture(scope="module")
def conn(server_url: str) -> Iterator[psycopg.Connection]:
    name = f"patas_cover_{os.getpid()}"
    url = create_database(server_url, name)
    with psycopg.connect(url) as c:
        create_fixture(c, PARA + OTHER_SPAM + HAM + SAME)
        c.execute(LABEL_COUNTS)
        c.commit()
        yield c
    drop_database(server_url, name)


def test_a_paraphrasing_cluster_gets_any_of_its_own_clean_phrases(conn: psycopg.Connection) -> None:
    cluster = Cluster("c_para", [m["message_id"] for m in PARA])
    (proposal,) = cover_rules(conn, [cluster])
    assert proposal["cluster_id"] == "c_para" and proposal["cluster_size"] == len(PARA)
    phrases = [p["value"] for p in proposal["rule"]["any"]]
    assert 2 <= len(phrases) <= 8 and phrases == sorted(phrases)
    # Never a phrase seen in ham ("work from home", "weekly pay"), nor one other spam shares
    # more than the campaign does ("online", "today").
    ham_words = {w for m in HAM for w in m["normalized_text"].split()}
    assert not any(set(p.split()) <= ham_words for p in phrases), phrases
    assert "online" not in phrases and "today" not in phrases
    rule = rl.parse_rule(proposal["rule"])
    hit = [m for m in PARA + OTHER_SPAM + HAM if rl.evaluate(rule, m)]
    assert {m["message_id"] for m in hit} == {m["message_id"] for m in PARA}


def test_a_cluster_one_phrase_covers_gets_no_pooled_rule(conn: psycopg.Connection) -> None:
    assert cover_rules(conn, [Cluster("c_same", [m["message_id"] for m in SAME])]) == []
    assert cover_rules(conn, [Cluster("c_tiny", [10, 11, 12])]) == []
