"""The synthetic corpus generator: deterministic, realistic enough for every stage."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from python_steps.bench.generate import (
    CAMPAIGNS,
    DRIFT_DOMAIN,
    DRIFT_STOPPED_CAMPAIGN,
    FLASH_CAMPAIGNS,
    PARAPHRASE_CAMPAIGNS,
    generate_corpus,
)
from python_steps.text.normalize import normalize_text

ROWS = 6000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    path = tmp_path_factory.mktemp("gen") / "c.jsonl"
    generate_corpus(ROWS, 7, path)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_byte_identical_for_a_seed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    generate_corpus(500, 3, a)
    generate_corpus(500, 3, b)
    generate_corpus(500, 4, c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    generate_corpus(500, 3, tmp_path / "a.jsonl.gz")
    generate_corpus(500, 3, tmp_path / "b.jsonl.gz")
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_paraphrasing_campaigns_are_off_by_default_and_replace_spam_only(tmp_path: Path) -> None:
    plain, para, again = tmp_path / "plain.jsonl", tmp_path / "para.jsonl", tmp_path / "again.jsonl"
    generate_corpus(6000, 7, plain)
    generate_corpus(6000, 7, para, paraphrase=True)
    generate_corpus(6000, 7, again, paraphrase=True)
    assert para.read_bytes() == again.read_bytes()
    assert (
        plain.read_bytes()
        == generate_corpus(6000, 7, tmp_path / "p2.jsonl", paraphrase=False).path.read_bytes()
    )
    before = [json.loads(x) for x in plain.read_text(encoding="utf-8").splitlines()]
    after = [json.loads(x) for x in para.read_text(encoding="utf-8").splitlines()]
    assert len(before) == len(after)
    names = {c[0] for c in PARAPHRASE_CAMPAIGNS}
    replaced = [(b, a) for b, a in zip(before, after, strict=True) if a["meta"].get("campaign") in names]
    spam = sum(1 for b in before if b["meta"].get("campaign"))
    assert 0.10 * spam < len(replaced) < 0.20 * spam
    assert {a["meta"]["campaign"] for _, a in replaced} == names
    # Only spam is replaced; every other line is unchanged; ids, times and labels stay.
    assert all(b["meta"].get("campaign") and b["is_spam"] == a["is_spam"] for b, a in replaced)
    assert all(b == a for b, a in zip(before, after, strict=True) if a["meta"].get("campaign") not in names)
    assert all((b["id"], b["timestamp"]) == (a["id"], a["timestamp"]) for b, a in replaced)
    for _, a in replaced:  # no link, number, handle or email: nothing but the wording to go on
        assert not re.search(r"\d|https?:|www\.|\.com|@|t\.me", a["text"]), a["text"]
    # Varied wording: within a campaign, no normalized message repeats often, and no word
    # trigram is shared by more than a third of its messages.
    for name in names:
        texts = [normalize_text(a["text"]) for _, a in replaced if a["meta"]["campaign"] == name]
        assert len(set(texts)) > 0.8 * len(texts)
        trigrams: dict[str, int] = defaultdict(int)
        for t in texts:
            words = t.split()
            for g in {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}:
                trigrams[g] += 1
        assert max(trigrams.values()) < len(texts) / 3


def test_message_contract_fields(corpus: list[dict]) -> None:
    assert len(corpus) == ROWS
    assert len({m["id"] for m in corpus}) == ROWS
    for m in corpus[:200]:
        assert set(m) == {
            "id",
            "timestamp",
            "text",
            "is_spam",
            "meta",
            "tas_action",
            "user_complaint",
            "unbanned",
        }
        assert {"sender", "chat", "channel", "language"} <= set(m["meta"])
        assert m["tas_action"] in ("blocked", "allowed")
    assert [m["timestamp"] for m in corpus] == sorted(m["timestamp"] for m in corpus)


def test_spam_share_and_languages(corpus: list[dict]) -> None:
    labelled = [m for m in corpus if m["is_spam"] is not None]
    share = sum(m["is_spam"] for m in labelled) / len(labelled)
    assert 0.15 < share < 0.25  # default spam_share=0.2
    assert 0 < len(corpus) - len(labelled) < 0.03 * len(corpus)  # a few unlabelled
    languages = {m["meta"]["language"] for m in corpus}
    assert {"en", "ru"} <= languages
    assert any("Привет" in m["text"] for m in corpus if not m["is_spam"])


def test_custom_spam_share(tmp_path: Path) -> None:
    report = generate_corpus(3000, 1, tmp_path / "x.jsonl", spam_share=0.1)
    assert 0.07 < report.spam / (report.spam + report.ham) < 0.13


def test_small_campaigns_are_a_few_dozen_messages_over_a_few_days(tmp_path: Path) -> None:
    generate_corpus(1500, 3, tmp_path / "s.jsonl", days=14)
    with_small = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    generate_corpus(1500, 3, tmp_path / "n.jsonl", days=14, small_campaigns=False)
    without = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
    names = {c.name for c in FLASH_CAMPAIGNS}
    for name in names:
        msgs = [m for m in with_small if m["meta"].get("campaign") == name]
        assert 5 <= len(msgs) <= 40 and len({m["timestamp"][:10] for m in msgs}) <= 3, name
        assert all(m["is_spam"] in (True, None) for m in msgs)
    # The same spam share, and only spam lines change.
    assert sum(m["is_spam"] is True for m in with_small) == sum(m["is_spam"] is True for m in without)
    changed = [(a, b) for a, b in zip(with_small, without, strict=True) if a != b]
    assert changed and all(b["meta"].get("campaign") and a["meta"]["campaign"] in names for a, b in changed)


def test_obfuscation_present(corpus: list[dict]) -> None:
    spam = [m["text"] for m in corpus if m["is_spam"]]
    zero_width = sum(any(z in t for z in "\u200b\u200c\u200d\u2060") for t in spam)
    defanged = sum("hxxp" in t or "[.]" in t for t in spam)
    mixed_script = sum(
        any("a" <= ch.lower() <= "z" for ch in t) and any("а" <= ch.lower() <= "я" for ch in t)
        for t in spam
        if t.isascii() is False
    )
    spaced = sum(bool(re.search(r"\b(?:\w ){4,}\w\b", t)) for t in spam)
    leet = sum(bool(re.search(r"[a-z][0-9$][a-z]", t)) for t in spam)
    assert zero_width > 5 and defanged > 5 and mixed_script > 5 and spaced > 5 and leet > 5


def test_hard_ham_shares_entities_with_spam(corpus: list[dict]) -> None:
    ham = [m["text"] for m in corpus if m["is_spam"] is False]
    assert any("github.com" in t for t in ham)
    assert any("verify your account" in t.lower() for t in ham)
    assert any("price" in t for t in ham)
    assert any(ch.isdigit() for t in ham for ch in t if "call" in t.lower())


def test_campaigns_have_templates_entities_and_start_stop_days(corpus: list[dict]) -> None:
    days: dict[str, set[str]] = defaultdict(set)
    texts: dict[str, set[str]] = defaultdict(set)
    for m in corpus:
        if m["is_spam"]:
            name = m["meta"]["campaign"]
            days[name].add(m["timestamp"][:10])
            texts[name].add(m["text"])
    assert set(days) == {c.name for c in CAMPAIGNS} | {c.name for c in FLASH_CAMPAIGNS}
    assert 8 <= len(CAMPAIGNS) <= 12
    assert all(3 <= len(c.templates) <= 6 for c in CAMPAIGNS)
    firsts = {min(d) for d in days.values()}
    lasts = {max(d) for d in days.values()}
    assert len(firsts) > 2 and len(lasts) > 2  # campaigns start and stop on different days
    last_day = max(m["timestamp"][:10] for m in corpus)
    late = sorted({m["timestamp"][:10] for m in corpus})[int(0.7 * 30) :]
    reaching_late = [
        c for c, d in days.items() if d & set(late) and c not in {f.name for f in FLASH_CAMPAIGNS}
    ]
    assert len(reaching_late) >= len(CAMPAIGNS) - 2
    assert last_day == "2026-01-30"
    # senders rotate: a campaign uses many senders
    senders = {m["meta"]["sender"] for m in corpus if m["is_spam"] and m["meta"]["campaign"] == "prize_sms"}
    assert len(senders) > 20
    # varied phone formats inside one campaign
    bank = " ".join(texts["bank_phish_ru"])
    assert "8 (912) 345-67-89" in bank or "+7 912 345-67-89" in bank


def test_drift_scenario(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    generate_corpus(8000, 5, path, scenario="drift", days=20)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    first = [m for m in rows if m["timestamp"] < "2026-01-11"]
    second = [m for m in rows if m["timestamp"] >= "2026-01-11"]
    stopped = lambda ms: sum(m["meta"].get("campaign") == DRIFT_STOPPED_CAMPAIGN for m in ms)  # noqa: E731
    assert stopped(first) > 0 and stopped(second) == 0
    ham_with_domain = lambda ms: sum(DRIFT_DOMAIN in m["text"] for m in ms if m["is_spam"] is False)  # noqa: E731
    assert ham_with_domain(first) == 0 and ham_with_domain(second) > 10
    with pytest.raises(ValueError):
        generate_corpus(10, 1, tmp_path / "x.jsonl", scenario="nope")
