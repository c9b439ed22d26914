"""The normalizer over text lines or JSONL, for consumers of the exports (``patas normalize``).

The SQL export's portable statements read ``messages(id, text, words)``; the ROL rules marked
``normalized_text`` match normalized text. These produce both columns from raw text with the one
normalizer (:mod:`python_steps.text.normalize`, the twin of the warehouse's
``patas.normalize_text`` / ``patas.normalized_words``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from python_steps.text.normalize import normalize_text, tokens


def normalized_words(text: str) -> str:
    """The words of ``normalize_text(text)`` joined by single spaces (``patas.normalized_words``)."""
    return " ".join(tokens(normalize_text(text) or ""))


def normalize_lines(lines: Iterable[str], *, words: bool = False) -> Iterator[str]:
    """One output line per input line: its normalized text (or its words)."""
    for line in lines:
        text = line.rstrip("\n")
        yield normalized_words(text) if words else normalize_text(text) or ""


def normalize_jsonl(lines: Iterable[str], *, field: str = "text") -> Iterator[dict[str, Any]]:
    """Each JSON object with ``normalized_text`` and ``words`` added (blank lines skipped).
    Raises ValueError naming the line for a line that is not an object with a string ``field``."""
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {no}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
            raise ValueError(f"line {no}: expected an object with a string field {field!r}")
        text = obj[field]
        obj["normalized_text"] = normalize_text(text)
        obj["words"] = normalized_words(text)
        yield obj
