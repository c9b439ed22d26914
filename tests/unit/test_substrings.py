"""Recurring substrings of unspaced text (python_steps.text.substrings): pure."""

from __future__ import annotations

import re
import unicodedata

from python_steps.text import substrings as subs


def _mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


CFG = subs.SubstringConfig(min_chars=3, max_chars=8, min_support=2)


def test_runs_are_the_unspaced_scripts_only() -> None:
    text = "promo คาสิโน bit.ly/x 東京タワー 안녕하세요 Привет"
    assert subs.unspaced_runs(text) == ["คาสิโน", "東京タワー"]
    assert subs.unspaced_runs("") == [] and subs.message_substrings("win big prize", CFG) == set()


def test_substrings_never_split_a_character_from_its_marks() -> None:
    run = "ที่นี่ได้เงิน"  # tone and vowel marks on several consonants
    pieces = subs.run_substrings(run, CFG)
    assert pieces
    for p in pieces:
        assert not _mark(p[0]), p
        assert any(
            run.startswith(p, i) and (i + len(p) == len(run) or not _mark(run[i + len(p)]))
            for i in range(len(run))
        ), p  # some occurrence ends on a whole cluster
        bases = sum(not _mark(c) for c in p)
        assert CFG.min_chars <= bases <= CFG.max_chars


def test_closed_substrings_with_spam_and_ham_counts() -> None:
    spam = ["สมัครคาสิโนวันนี้", "เล่นคาสิโนได้เงิน", "คาสิโนฟรี", "สมัครวันนี้"]
    ham = ["ไปเล่นกีฬาวันนี้", "คาสิโน"]
    out = subs.recurring_substrings(spam, ham, CFG)
    assert out == sorted(out)
    counts = {s: (n, h) for s, n, h in out}
    assert counts["คาสิโน"] == (3, 1)  # in 3 spam, in the ham too
    # closed: "คาสิ" occurs only inside "คาสิโน" (same support), so only the longer one is kept
    assert "คาสิ" not in counts and "าสิโน" not in counts
    assert counts["วันนี้"] == (2, 1)
    assert "สมัคร" in counts and counts["สมัคร"][0] == 2
    for s, n, _ in out:
        assert n >= CFG.min_support and re.fullmatch(subs.UNSPACED_CLASS + "+", s)


def test_cjk_and_determinism() -> None:
    spam = ["限时优惠点击领取", "点击领取红包", "今天点击领取奖品"]
    out = subs.recurring_substrings(spam, ["今天天气很好"], CFG)
    assert ("点击领取", 3, 0) in out
    assert subs.recurring_substrings(list(reversed(spam)), ["今天天气很好"], CFG) == out


def test_edge_cores_keep_marks_with_their_letters_and_counts_are_per_message() -> None:
    assert subs.edge_cores("ฝากเข้า") == ["ากเข้า", "ฝากเข้"]  # the tone mark stays with its letter
    assert subs.edge_cores("ก") == []
    counts = subs.containing_counts(["ากเข้า", "คาสิโน"], ["ฝากเข้าฝากเข้า", "คาสิโน"], ["มากเข้า", "มากเข้า"])
    assert counts == {"ากเข้า": (1, 2), "คาสิโน": (1, 0)}
