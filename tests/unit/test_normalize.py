"""Unit tests of python_steps.text.normalize (no database): the pipeline steps, the extractors, the
Public Suffix List algorithm, n-grams, and that generated files and the SQL twin's version are
current. SQL parity is tests/integration/test_normalize_parity.py."""

from __future__ import annotations

import re

import pytest

from python_steps.settings import PROJECT_ROOT
from python_steps.text import normalize as nz
from python_steps.text import reference_data


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("FREE entry!!! Txt WIN", "free entry!! txt win"),
        ("pаypal.com аccount", "paypal.com account"),  # Cyrillic а in Latin words
        ("Привeт, Пpoдам", "привет, продам"),  # Latin e, p, o in Russian words
        ("Привет мир", "привет мир"),  # single-script Russian stays Russian
        ("c1aim y0ur n0w, fr33 5ale", "claim your now, fr33 5ale"),
        ("zero\u200bwidth\u202e bidi\ufeff", "zerowidth bidi"),
        ("\uff26\uff32\uff25\uff25 \u212a\ufb01", "free kfi"),
        ("ΣΟΦΟΣ ẞ", "σοφοσ ß"),
        ("Ellipsis... and !!!!!! and ааааа 1000000", "ellipsis... and !! and аа 1000000"),
        ("  tabs\tand\nnewlines\u00a0 ", "tabs and newlines"),
        ("У\u0308", "ӱ"),  # NFKC composes before case folding
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert nz.normalize_text(raw) == expected


def test_normalize_none_and_idempotent_on_plain_text() -> None:
    assert nz.normalize_text(None) is None
    assert nz.normalize_text(nz.normalize_text("Call 0800 123 4567 now")) == "call 0800 123 4567 now"


def test_signature_masks_entities() -> None:
    a = nz.template_signature("WIN £1000! Call 0800 123 4567 or visit bit.ly/abc @spam_bot")
    b = nz.template_signature("WIN £2500! Call 0800-765-4321 or visit tinyurl.com/zz @other_bot")
    assert a == b
    assert a != nz.template_signature("Are you coming to the meeting tomorrow?")
    assert re.fullmatch("[0-9a-f]{32}", a)
    assert 0 <= nz.split_bucket(a) < 100


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("Call 0800-123-4567 now", "phones", ["08001234567"]),
        ("+44 (0)7700 900123!", "phones", ["447700900123"]),
        ("08oo 123 4567", "phones", ["08001234567"]),
        ("short 12 34 56 and 2026 and 123456", "phones", []),
        ("00 44 20 7946 0958", "phones", ["442079460958"]),
        # glued to a word or a price: still a phone; a longer digit run is not a shorter phone
        ("speak to a live operator 2 claim 0871277810910p/min", "phones", ["0871277810910"]),
        ("Netcollex Ltd 08700621170150p per msg", "phones", ["08700621170150"]),
        ("OptOut txt STOP Help08714742804", "phones", ["08714742804"]),
        ("to claim, call09050000327", "phones", ["09050000327"]),
        ("o8oo l23 4567 (a lone look-alike opens the word)", "phones", []),
        ("Text FA to 87121 to enter", "short_codes", ["87121"]),
        ("call 87121 (no keyword)", "short_codes", []),
        ("hxxps://evil[.]com/login", "urls", ["https://evil.com/login"]),
        ("visit WWW.Example.CO.UK/AbC).", "urls", ["http://www.example.co.uk/abc"]),
        ("bad(dot)site(dot)ru and example . com", "urls", ["http://bad.site.ru", "http://example.com"]),
        ("mail john@example.com", "urls", []),
        ("follow @Spam_King and t.me/Deals_Channel", "handles", ["deals_channel", "spam_king"]),
        ("t.me/joinchat/AbCdEf", "handles", []),
        ("John.Doe+tag@Sub.Example.ORG.", "emails", ["john.doe+tag@sub.example.org"]),
        ("win £1,000 or 500 euros or 100 руб", "money", ["eur 500", "gbp 1000", "rub 100"]),
    ],
)
def test_extractors(raw: str, kind: str, expected: list[str]) -> None:
    assert nz.message_entities(raw)[kind] == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.example.co.uk", "example.co.uk"),
        ("foo.bar.github.io", "bar.github.io"),  # private section
        ("x.ck", None),  # wildcard *.ck: x.ck is itself a public suffix
        ("www.ck", "www.ck"),  # exception !www.ck
        ("com", None),
        ("пример.рф", "пример.рф"),
        ("localhost", None),
    ],
)
def test_registrable_domain(host: str, expected: str | None) -> None:
    assert nz.registrable_domain(host, nz.load_public_suffixes()) == expected


def test_ngrams_skip_stop_words_and_numbers_at_the_edges() -> None:
    grams = nz.ngrams("claim your prize of 100 now", frozenset({"your", "of"}))
    assert "claim" in grams and "claim your prize" in grams and "prize" in grams
    assert "your prize" not in grams and "prize of" not in grams and "100" not in grams
    assert "of 100 now" not in grams and "now" in grams


def test_generated_seeds_and_macro_are_current() -> None:
    # Regenerating from the pinned publicsuffixlist / stop-words packages gives the committed files.
    assert reference_data.stale_files() == []


def test_sql_normalizer_version_matches_python() -> None:
    macro = (PROJECT_ROOT / "macros" / "text" / "normalizer_version.sql").read_text()
    assert f"'{nz.NORMALIZER_VERSION}'" in macro
