"""Common words of general language, from a maintained word-frequency list (``wordfreq``).

A word is *common* when wordfreq puts it at Zipf 4 or more (at least 10 uses per million words of
general text) in one of the given languages. Drafting pairs a common word with a more specific
signal; promotion gives phrases of common words a sceptical prior (python_steps.lifecycle.evidence).
Words in a script none of the languages covers (Thai with ``en``) are not common: wordfreq has no
list for them, so nothing is known either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

COMMON_ZIPF = 4.0  # wordfreq's Zipf scale: 4 = 10 uses per million words


class LanguageError(ValueError):
    pass


def check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """``languages`` when wordfreq has a list for each, else a LanguageError naming the others."""
    from wordfreq import available_languages

    known = available_languages()
    unknown = [lang for lang in languages if lang not in known]
    if unknown:
        raise LanguageError(
            f"no word-frequency list for {', '.join(unknown)} (PATAS_LANGUAGES); known: {', '.join(sorted(known))}"
        )
    return tuple(languages)


@lru_cache(maxsize=65536)
def _zipf(word: str, language: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, language)


def is_common_word(word: str, languages: Sequence[str] = ("en",)) -> bool:
    """True when ``word`` is at least Zipf 4 in one of ``languages``."""
    word = word.strip()
    return bool(word) and any(_zipf(word, lang) >= COMMON_ZIPF for lang in languages)


def phrase_is_common(phrase: str, languages: Sequence[str] = ("en",)) -> bool:
    """Every word of ``phrase`` is common."""
    words = [w for w in phrase.split(" ") if w]
    return bool(words) and all(is_common_word(w, tuple(languages)) for w in words)
