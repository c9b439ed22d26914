"""Recurring substrings of text written without spaces between words.

Thai, Lao, Khmer, Myanmar, Chinese and Japanese put no space between words, so the word tokenizer
(runs of word characters) sees a whole clause as one token, and a phrase rule made of it only
matches that exact clause. Campaigns in these scripts reuse pieces of text inside otherwise varied
clauses ("casino", "free credit", a brand). This module finds them without a dictionary: the
substrings of the unspaced runs that recur in at least ``min_support`` spam messages, reduced to the
*closed* ones (no one-character-longer substring has the same support), then counted on ham.
Drafting turns the precise ones into ``text_contains`` rules.

A substring found this way can straddle a word boundary: the tail of one word and a common next
word ("...k" + "enter"). When one of its two one-character-shorter cores (:func:`edge_cores`)
would not clear drafting's bar on its own, the substring is precise only thanks to one edge
character: the unspaced analogue of a phrase of common words, which no word list marks in these
scripts. Drafting records it (``substring_edge:`` pattern ids) and promotion gives it no prior from
its kind (python_steps.lifecycle.evidence, kind ``substring_common``).

A substring starts on a base character and never splits a base character from its combining marks
(Thai vowel and tone marks are marks), and holds at least ``min_chars`` base characters. Pure and
deterministic: the same texts give the same counts, in code-point order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Scripts whose writing puts no space between words (Unicode blocks). Korean (Hangul) spaces its
# words and is not here; nor are Latin, Cyrillic, Arabic, ... which the word tokenizer serves.
UNSPACED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
)

UNSPACED_CLASS = "[" + "".join(f"\\u{lo:04X}-\\u{hi:04X}" for lo, hi in UNSPACED_RANGES) + "]"
_RUN = re.compile(UNSPACED_CLASS + "+")
# The same class for a Postgres regex (its ARE syntax takes the characters themselves).
UNSPACED_CLASS_POSTGRES = "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in UNSPACED_RANGES) + "]"


@dataclass(frozen=True)
class SubstringConfig:
    min_chars: int = 3  # base characters (combining marks not counted)
    max_chars: int = 24  # longer recurring runs are represented by their 24-character pieces
    min_support: int = 3  # spam messages


def unspaced_runs(text: str) -> list[str]:
    """The maximal runs of unspaced-script characters in ``text``, in order."""
    return _RUN.findall(text or "")


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def run_substrings(run: str, cfg: SubstringConfig) -> set[str]:
    """Every substring of ``run`` that starts on a base character, does not end before a combining
    mark of its last base character, and holds ``min_chars`` to ``max_chars`` base characters."""
    starts = [i for i, ch in enumerate(run) if not _is_mark(ch)]
    if len(starts) < cfg.min_chars:
        return set()
    # cluster ends: a substring may end after index e when e is the last index or run[e+1] is a base
    ends = [i for i in range(len(run)) if i + 1 == len(run) or not _is_mark(run[i + 1])]
    out: set[str] = set()
    for a, s in enumerate(starts):
        # the base characters at positions starts[a .. b]; the substring ends at ends[b]
        for b in range(a + cfg.min_chars - 1, min(a + cfg.max_chars, len(starts))):
            out.add(run[s : ends[b] + 1])
    return out


def message_substrings(text: str, cfg: SubstringConfig) -> set[str]:
    subs: set[str] = set()
    for run in unspaced_runs(text):
        subs |= run_substrings(run, cfg)
    return subs


def recurring_substrings(
    spam_texts: Iterable[str], ham_texts: Iterable[str], cfg: SubstringConfig | None = None
) -> list[tuple[str, int, int]]:
    """(substring, spam messages, ham messages) for the closed substrings of the spam texts'
    unspaced runs with at least ``min_support`` spam messages, sorted by substring."""
    cfg = cfg or SubstringConfig()
    support: dict[str, int] = {}
    for text in spam_texts:
        for s in message_substrings(text, cfg):
            support[s] = support.get(s, 0) + 1
    frequent = {s: n for s, n in support.items() if n >= cfg.min_support}
    # closed: a substring whose one-character extension (left or right, whole clusters) has the
    # same support occurs only inside that extension, which says the same with more context
    not_closed: set[str] = set()
    for s, n in frequent.items():
        for shorter in _one_shorter(s):
            if frequent.get(shorter) == n:
                not_closed.add(shorter)
    closed = {s: n for s, n in frequent.items() if s not in not_closed}
    ham: dict[str, int] = dict.fromkeys(closed, 0)
    for text in ham_texts:
        for s in message_substrings(text, cfg):
            if s in ham:
                ham[s] += 1
    return sorted((s, n, ham[s]) for s, n in closed.items())


def containing_counts(
    needles: Iterable[str], spam_texts: Iterable[str], ham_texts: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """(spam messages, ham messages) holding each of ``needles`` as a substring."""
    needles = sorted(set(needles))
    counts = {n: [0, 0] for n in needles}
    for col, texts in ((0, spam_texts), (1, ham_texts)):
        for text in texts:
            for n in needles:
                if n in text:
                    counts[n][col] += 1
    return {n: (c[0], c[1]) for n, c in counts.items()}


def edge_cores(s: str) -> list[str]:
    """The two one-character-shorter cores of ``s`` (without its first, without its last cluster)."""
    return _one_shorter(s)


def _one_shorter(s: str) -> list[str]:
    """``s`` without its first cluster, and without its last cluster."""
    bases = [i for i, ch in enumerate(s) if not _is_mark(ch)]
    if len(bases) < 2:
        return []
    return [s[bases[1] :], s[: bases[-1]]]
