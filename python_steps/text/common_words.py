"""Common words of general language, from maintained word-frequency lists.

A word is *common* when its list puts it at Zipf 4 or more (at least 10 uses per million words of
general text) in one of the given languages. Drafting pairs a common word with a more specific
signal; promotion gives phrases of common words a sceptical prior (python_steps.lifecycle.evidence).

The lists: ``wordfreq`` for the languages it covers, and for Thai, which wordfreq has no list for,
the Thai National Corpus frequencies that PyThaiNLP ships (``pythainlp.corpus.tnc``, about 34M
words; each entry normalized as message text is, so ``ำ`` matches its NFKC form). A word written in
a script that belongs to one language only (:data:`SCRIPT_LANGUAGES`: Thai script is Thai) is judged
by that language's list whatever the configured languages, so a team whose traffic is Thai gets the
general-language prior without configuring it. Words in other scripts none of the languages covers
are not common: nothing is known either way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

COMMON_ZIPF = 4.0  # wordfreq's Zipf scale: 4 = 10 uses per million words
# Scripts written by one language only, and that language: a word in one is judged by its list.
SCRIPT_LANGUAGES = {"th": re.compile("[\u0e00-\u0e7f]")}
# Languages whose list comes from elsewhere than wordfreq.
OTHER_LISTS = ("th",)


class LanguageError(ValueError):
    pass


def check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """``languages`` when wordfreq has a list for each, else a LanguageError naming the others."""
    from wordfreq import available_languages

    known = {*available_languages(), *OTHER_LISTS}
    unknown = [lang for lang in languages if lang not in known]
    if unknown:
        raise LanguageError(
            f"no word-frequency list for {', '.join(unknown)} (PATAS_LANGUAGES); known: {', '.join(sorted(known))}"
        )
    return tuple(languages)


@lru_cache(maxsize=1)
def _thai_zipf() -> dict[str, float]:
    """Zipf value per word of the Thai National Corpus list, keyed by the word as normalized."""
    from pythainlp.corpus import tnc

    from python_steps.text.normalize import normalize_text

    counts = tnc.word_freqs()
    total = sum(n for _, n in counts)
    out: dict[str, float] = {}
    for word, n in sorted(counts):
        key = normalize_text(word) or ""
        if key and n > 0:
            out[key] = max(out.get(key, 0.0), math.log10(n * 1e9 / total))
    return out


@lru_cache(maxsize=65536)
def _zipf(word: str, language: str) -> float:
    if language == "th":
        return _thai_zipf().get(word, 0.0)
    from wordfreq import zipf_frequency

    return zipf_frequency(word, language)


def word_languages(word: str, languages: Sequence[str]) -> tuple[str, ...]:
    """The languages whose lists judge ``word``: the given ones, plus the one language of a script
    the word is written in (Thai script: Thai)."""
    own = tuple(lang for lang, script in SCRIPT_LANGUAGES.items() if script.search(word))
    return tuple(dict.fromkeys((*languages, *own)))


def is_common_word(word: str, languages: Sequence[str] = ("en",)) -> bool:
    """True when ``word`` is at least Zipf 4 in one of ``languages`` (or of its script's language)."""
    word = word.strip()
    return bool(word) and any(_zipf(word, lang) >= COMMON_ZIPF for lang in word_languages(word, languages))


def phrase_is_common(phrase: str, languages: Sequence[str] = ("en",)) -> bool:
    """Every word of ``phrase`` is common."""
    words = [w for w in phrase.split(" ") if w]
    return bool(words) and all(is_common_word(w, tuple(languages)) for w in words)
