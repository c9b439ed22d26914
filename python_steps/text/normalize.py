"""Text normalization and entity extraction: the Python twin of the dbt macros.

Every function here has a SQL twin in ``macros/`` that gives the same result on Postgres (UTF8
database, any locale). The regular expressions are written once, below, in the subset of syntax
that Postgres AREs and Python ``re`` read the same way: explicit code-point classes (never ``\\w``,
``\\s``, ``\\d``, ``\\b`` or ``[[:alpha:]]``, which depend on the locale in Postgres), greedy
quantifiers only, ``\\uXXXX`` escapes, no alternation whose branches can match at the same place
with different lengths. The macros embed the same strings (``tests/unit/test_normalize_macros.py``
checks it) and ``tests/integration/test_normalize_parity.py`` runs both sides over the shared data
and adversarial strings.

Pipeline (``normalize_text``):

1. ``prepare_text``: drop code points unassigned in Unicode 14 (Python 3.11's table; Postgres may
   know a later Unicode where those code points have decompositions, so NFKC would differ), drop
   zero-width and bidi controls, NFKC, explicit case folding (a fixed upper->lower table over
   Latin, Greek, Cyrillic and Armenian: ``lower()`` in Postgres depends on the locale), whitespace
   collapsed. Entities (URLs, phones, ...) are extracted from this text.
2. runs of 3+ identical characters squeezed to two (``freeeee!!!!`` -> ``free!!``), except digits
   (phone numbers and amounts stay intact) and dots (an ellipsis stays as typed).
3. homoglyphs: inside a word that mixes Latin with Cyrillic/Greek letters, the minority script's
   look-alikes are folded into the majority script (``pаypal`` with a Cyrillic ``а`` becomes
   ``paypal``; ``прoдам`` with a Latin ``o`` becomes ``продам``). Words in one script are left
   alone, so Russian stays Russian and its n-grams stay meaningful.
4. digit look-alikes between Latin letters: 0->o, 1->l, 3->e, 5->s (``c1aim`` -> ``claim``,
   ``fr33`` is left alone: the 3s do not sit between letters).

Steps 2-4 never create or remove spaces, so the text stays collapsed. Every step after 1 has a
cheap pre-check on the prepared text, so the SQL twin does the costly part only on the few
messages that need it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

NORMALIZER_VERSION = "n4"

# --------------------------------------------------------------------------------------------------
# Character tables
# --------------------------------------------------------------------------------------------------


def _unassigned_ranges() -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    start = None
    for cp in range(0x110000):
        cn = unicodedata.category(chr(cp)) == "Cn"
        if cn and start is None:
            start = cp
        elif not cn and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return ranges


def _esc(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _class(ranges: list[tuple[int, int]]) -> str:
    return "".join(_esc(a) if a == b else f"{_esc(a)}-{_esc(b)}" for a, b in ranges)


# Unicode 14 is Python 3.11's table; the parity test proves the SQL twin sees the same.
UNICODE_VERSION = unicodedata.unidata_version
UNASSIGNED_PATTERN = "[" + _class(_unassigned_ranges()) + "]"
# Cheap pre-check for the SQL side: text made only of these code points cannot hold an unassigned
# one (all assigned in Unicode 14), so the long class above is skipped for most messages.
COMMON_ONLY_PATTERN = "^[\\u0001-\\u0377\\u037a-\\u037f\\u0384-\\u038a\\u038c\\u038e-\\u03a1\\u03a3-\\u052f\\u2000-\\u2064\\u20a0-\\u20c0]*$"

# Zero-width characters, bidi controls, soft hyphen, invisible operators: removed.
INVISIBLE_PATTERN = "[\\u00ad\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u206f\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0]"

# Whitespace (ASCII controls count as space).
SPACE_PATTERN = "[\\u0001-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+"


CASE_BLOCKS = (
    ("latin1", 0xC0, 0xDE),
    ("latin_ext", 0x100, 0x24F),
    ("greek", 0x370, 0x3FF),
    ("cyrillic", 0x400, 0x42F),
    ("cyrillic_ext", 0x460, 0x52F),
    ("armenian", 0x531, 0x556),
    ("latin_additional", 0x1E00, 0x1EFF),
)


def _case_blocks() -> dict[str, dict[str, str]]:
    """Upper -> lower pairs per block (ASCII is folded by lower() under the "C" collation)."""
    blocks: dict[str, dict[str, str]] = {}
    for name, lo, hi in CASE_BLOCKS:
        table: dict[str, str] = {}
        for cp in range(lo, hi + 1):
            c = chr(cp)
            low = c.lower()
            if len(low) == 1 and low != c and unicodedata.normalize("NFKC", c) == c:
                table[c] = low
        blocks[name] = table
    blocks["greek"]["\u03c2"] = "\u03c3"  # final sigma
    blocks["latin_additional"]["\u1e9e"] = "\u00df"  # capital sharp s
    return blocks


CASE_BLOCK_TABLES = _case_blocks()
CASE_TABLE = {chr(c): chr(c + 32) for c in range(0x41, 0x5B)}
for _t in CASE_BLOCK_TABLES.values():
    CASE_TABLE.update(_t)
_CASE_TRANS = str.maketrans(CASE_TABLE)


# Letters per script for the homoglyph step (after case folding).
LATIN_LETTERS = "a-z\\u00df-\\u00f6\\u00f8-\\u00ff\\u0100-\\u024f\\u1e00-\\u1eff"
CYRILLIC_LETTERS = "\\u0400-\\u052f"
GREEK_LETTERS = "\\u0370-\\u03ff"
MIXED_SCRIPT_PATTERN = f"[{LATIN_LETTERS}][{GREEK_LETTERS}{CYRILLIC_LETTERS}]|[{GREEK_LETTERS}{CYRILLIC_LETTERS}][{LATIN_LETTERS}]"
SCRIPT_WORD_PATTERN = f"[{LATIN_LETTERS}{GREEK_LETTERS}{CYRILLIC_LETTERS}]+"
SCRIPT_GAP_PATTERN = f"[^{LATIN_LETTERS}{GREEK_LETTERS}{CYRILLIC_LETTERS}]+"
NOT_LATIN_PATTERN = f"[^{LATIN_LETTERS}]"
NOT_CYRILLIC_PATTERN = f"[^{CYRILLIC_LETTERS}]"
NOT_GREEK_PATTERN = f"[^{GREEK_LETTERS}]"

# Cyrillic and Greek letters that look like Latin ones (lower case, incl. upper-case look-alikes
# such as в/В~B, н/Н~H, т/Т~T) -> Latin; and Latin -> Cyrillic for Cyrillic-majority words.
TO_LATIN = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ӏ": "l", "ь": "b",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "γ": "y", "ϲ": "c",
}  # fmt: skip
TO_CYRILLIC = {
    "a": "а", "b": "в", "c": "с", "e": "е", "h": "н", "k": "к", "m": "м", "o": "о", "p": "р",
    "t": "т", "x": "х", "y": "у",
}  # fmt: skip
TO_LATIN_FROM = "".join(TO_LATIN)
TO_LATIN_TO = "".join(TO_LATIN.values())
TO_CYRILLIC_FROM = "".join(TO_CYRILLIC)
TO_CYRILLIC_TO = "".join(TO_CYRILLIC.values())
_TO_LATIN_TRANS = str.maketrans(TO_LATIN)
_TO_CYRILLIC_TRANS = str.maketrans(TO_CYRILLIC)

# Digit look-alikes between Latin letters. One pattern per digit for SQL (a variable-length
# lookbehind is fine for Postgres); Python folds the whole run at once, which is equivalent.
DIGIT_LOOKALIKES = {"0": "o", "1": "l", "3": "e", "5": "s"}
DIGIT_RUN_PATTERN = "(?<=[a-z])[0135]+(?=[a-z])"
_DIGIT_TRANS = str.maketrans(DIGIT_LOOKALIKES)


def digit_pattern_sql(digit: str) -> str:
    return f"(?<=[a-z][0135]*){digit}(?=[0135]*[a-z])"


SQUEEZE_PATTERN = "([^0-9.])\\1\\1+"
# SQL: backreferences with a quantifier are very slow in Postgres, so it checks for any triple
# (fast) and squeezes those rows character by character (macros/squeeze_repeats.sql).
TRIPLE_PATTERN = "(.)\\1\\1"
SQUEEZABLE_TRIPLE_PATTERN = "([^0-9.])\\1\\1"

# Word characters for n-grams and signatures: Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic,
# Devanagari, Thai, CJK, kana, Hangul letters; digits; combining marks.
WORD_CHARS = (
    "0-9a-z\\u00aa\\u00b5\\u00ba\\u00df-\\u00f6\\u00f8-\\u02af\\u0300-\\u036f\\u0370-\\u03ff"
    "\\u0400-\\u052f\\u0531-\\u0587\\u05d0-\\u05ea\\u0620-\\u064a\\u0660-\\u0669\\u0900-\\u097f"
    "\\u0e01-\\u0e4e\\u1e00-\\u1eff\\u3041-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7a3"
)
NON_WORD_PATTERN = f"[^{WORD_CHARS}]+"

_re_unassigned = re.compile(UNASSIGNED_PATTERN)
_re_invisible = re.compile(INVISIBLE_PATTERN)
_re_space = re.compile(SPACE_PATTERN)
_re_mixed = re.compile(MIXED_SCRIPT_PATTERN)
_re_script_word = re.compile(SCRIPT_WORD_PATTERN)
_re_not_latin = re.compile(NOT_LATIN_PATTERN)
_re_not_cyrillic = re.compile(NOT_CYRILLIC_PATTERN)
_re_not_greek = re.compile(NOT_GREEK_PATTERN)
_re_digit_run = re.compile(DIGIT_RUN_PATTERN)
_re_squeeze = re.compile(SQUEEZE_PATTERN)
_re_non_word = re.compile(NON_WORD_PATTERN)


def _collapse(s: str) -> str:
    return _re_space.sub(" ", s).strip(" ")


def prepare_text(s: str) -> str:
    """Unicode-clean, case-folded, whitespace-collapsed text: what entities are extracted from."""
    s = _re_unassigned.sub("", s)
    s = _re_invisible.sub("", s)
    s = unicodedata.normalize("NFKC", s)
    s = s.translate(_CASE_TRANS)
    return _collapse(s)


def _fold_word(m: re.Match[str]) -> str:
    w = m.group()
    latin = len(_re_not_latin.sub("", w))
    if latin == 0 or latin == len(w):
        return w
    if latin >= len(w) - latin:
        return w.translate(_TO_LATIN_TRANS)
    if len(_re_not_cyrillic.sub("", w)) >= len(_re_not_greek.sub("", w)):
        return w.translate(_TO_CYRILLIC_TRANS)
    return w


def fold_homoglyphs(s: str) -> str:
    if not _re_mixed.search(s):
        return s
    return _re_script_word.sub(_fold_word, s)


def normalize_prepared(s: str) -> str:
    """Steps 2-4 of the pipeline over ``prepare_text`` output."""
    s = _re_squeeze.sub(r"\1\1", s)
    s = fold_homoglyphs(s)
    return _re_digit_run.sub(lambda m: m.group().translate(_DIGIT_TRANS), s)


def normalize_text(s: str | None) -> str | None:
    if s is None:
        return None
    return normalize_prepared(prepare_text(s))


# --------------------------------------------------------------------------------------------------
# Template signature
# --------------------------------------------------------------------------------------------------

# Over normalized text: any token with '@' (emails, handles), any token with '://', '/' or a dot
# between letters/digits (URLs, domains), then numbers with their separators (phones, amounts).
MASK_AT_PATTERN = "[^ ]*@[^ ]*"
MASK_URL_PATTERN = "[^ ]*(://|[a-z0-9]\\.[a-z0-9]|/)[^ ]*"
MASK_NUMBER_PATTERN = "[0-9][0-9 ().+-]*[0-9]|[0-9]"
_re_mask_at = re.compile(MASK_AT_PATTERN)
_re_mask_url = re.compile(MASK_URL_PATTERN)
_re_mask_number = re.compile(MASK_NUMBER_PATTERN)


def mask_entities(normalized: str) -> str:
    s = _re_mask_at.sub("@", normalized)
    s = _re_mask_url.sub("/", s)
    return _re_mask_number.sub("0", s)


def template_signature(s: str | None, *, normalized: bool = False) -> str | None:
    """md5 hex of the normalized text with URLs, emails, handles, phones and numbers masked."""
    if s is None:
        return None
    n = s if normalized else normalize_text(s)
    return hashlib.md5(mask_entities(n).encode("utf-8")).hexdigest()


def split_bucket(signature: str) -> int:
    return int(hashlib.md5(signature.encode("utf-8")).hexdigest()[:8], 16) % 100


# --------------------------------------------------------------------------------------------------
# Entity extraction (over prepare_text output)
# --------------------------------------------------------------------------------------------------

# Obfuscated URLs: hxxp, [.] (.) {.} [dot] (dot), and spaces around a dot before a common TLD.
HXXP_PATTERN = "hxxp"
OBFUSCATED_DOT_PATTERN = " ?(?:\\[\\.\\]|\\(\\.\\)|\\{\\.\\}|\\[dot\\]|\\(dot\\)) ?"
COMMON_TLDS = (
    "com", "net", "org", "info", "biz", "io", "me", "ly", "co", "uk", "us", "ru", "de", "fr", "in",
    "xyz", "top", "online", "site", "club", "link", "app", "ws", "cc", "tk", "gl", "to", "su", "рф",
)  # fmt: skip
_TLD_ALT = "|".join(sorted(COMMON_TLDS, key=lambda t: (-len(t), t)))
SPACED_DOT_PATTERN = f"([a-z0-9]) \\. ?({_TLD_ALT})(?![a-z0-9\\u0430-\\u044f])"
SPACED_DOT_PATTERN_2 = f"([a-z0-9])\\. ({_TLD_ALT})(?![a-z0-9\\u0430-\\u044f])"

_HOST_LABEL = "[a-z0-9\\u00e0-\\u00f6\\u00f8-\\u00ff\\u0430-\\u044f\\u0451-]+"
URL_PATTERN = (
    "(?<![a-z0-9@._%+-])(?:(?:https?|ftp)://)?"
    f"{_HOST_LABEL}(?:\\.{_HOST_LABEL})*\\.[a-z\\u0430-\\u044f\\u0451]{{2,24}}"
    "(?![a-z0-9\\u0430-\\u044f\\u0451@-])(?::[0-9]{2,5})?(?:/[^ ]*)?"
)
URL_KEEP_PATTERN = f"^(?:[a-z]+://|www\\.)|/|\\.(?:{_TLD_ALT})(?::[0-9]+)?$"
TRAILING_PUNCT_PATTERN = "[]),.;:!?}>\"'»]+$"
HAS_SCHEME_PATTERN = "^[a-z]+://"
HOST_PATTERN = "^[a-z]+://([^/:]+).*$"

EMAIL_PATTERN = "(?<![a-z0-9._%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\\.[a-z0-9-]+)*\\.[a-z]{2,24}(?![a-z0-9-])"
HANDLE_PATTERN = "(?<![a-z0-9._@-])@([a-z0-9_]{3,32})(?![a-z0-9_@])"
TME_PATTERN = "(?<![a-z0-9.-])(?:t|telegram)\\.me/([a-z0-9_]{3,32})(?![a-z0-9_])"
TME_RESERVED = ("joinchat", "share", "addstickers", "proxy", "socks", "iv")

# A phone may touch letters (`call09050000327`, `08452810075ove`, `08700621170150p`): messages glue a
# number to a word or a price as freely as unspaced scripts glue it to their letters (which never
# stopped a match). An adjacent digit (or '+') ends it: a longer run of digits is not this phone;
# and a lone look-alike letter opening a word (`o8oo 123 4567`) is the number's own first digit
# written as a letter, not a glued word, so the number does not start after it.
PHONE_PATTERN = "(?<![0-9+])(?<![^a-z][oli])(?<!^[oli])(?:\\+|\\()?[0-9][0-9oli() .-]{5,20}[0-9](?![0-9])"
PHONE_NON_DIGIT_PATTERN = "[^0-9]"
# (Measured and not kept, 2026-12-06: also "to:" and "to no:" before the code; see docs/benchmarks.md.)
_SHORT_CODE_TO = " (?:to|2) "
SHORT_CODE_PATTERN = (
    f"(?<![a-z])(?:text|txt|send|sms|reply)[^0-9.!?]{{0,30}}{_SHORT_CODE_TO}([0-9]{{4,6}})(?![0-9])"
)

_AMOUNT = "[0-9]+(?:,[0-9]{3})*(?:\\.[0-9]{1,2})?(?![0-9])"
MONEY_PREFIX_PATTERN = f"(?<![a-z0-9])(?:[$£€₽¥]|usd|eur|gbp|rub) ?{_AMOUNT}"
MONEY_SUFFIX_PATTERN = (
    "(?<![0-9a-z.,])[0-9]+(?:,[0-9]{3})*(?:\\.[0-9]{1,2})? ?"
    "(?:[$£€₽]|usd|eur|gbp|rub|руб|dollars|pounds|euros|euro)(?![a-z\\u0430-\\u044f])"
)
MONEY_AMOUNT_STRIP_PATTERN = "[^0-9.]"
MONEY_CURRENCY_STRIP_PATTERN = "[0-9., ]"
CURRENCIES = {
    "$": "usd", "usd": "usd", "dollars": "usd", "£": "gbp", "gbp": "gbp", "pounds": "gbp",
    "€": "eur", "eur": "eur", "euro": "eur", "euros": "eur", "₽": "rub", "rub": "rub", "руб": "rub",
    "¥": "jpy",
}  # fmt: skip

_re_hxxp = re.compile(HXXP_PATTERN)
_re_obf_dot = re.compile(OBFUSCATED_DOT_PATTERN)
_re_spaced_dot = re.compile(SPACED_DOT_PATTERN)
_re_spaced_dot_2 = re.compile(SPACED_DOT_PATTERN_2)
_re_url = re.compile(URL_PATTERN)
_re_url_keep = re.compile(URL_KEEP_PATTERN)
_re_trailing = re.compile(TRAILING_PUNCT_PATTERN)
_re_scheme = re.compile(HAS_SCHEME_PATTERN)
_re_host = re.compile(HOST_PATTERN)
_re_email = re.compile(EMAIL_PATTERN)
_re_handle = re.compile(HANDLE_PATTERN)
_re_tme = re.compile(TME_PATTERN)
_re_phone = re.compile(PHONE_PATTERN)
_re_non_digit = re.compile(PHONE_NON_DIGIT_PATTERN)
_re_short_code = re.compile(SHORT_CODE_PATTERN)
_re_money_prefix = re.compile(MONEY_PREFIX_PATTERN)
_re_money_suffix = re.compile(MONEY_SUFFIX_PATTERN)
_re_money_amount = re.compile(MONEY_AMOUNT_STRIP_PATTERN)
_re_money_currency = re.compile(MONEY_CURRENCY_STRIP_PATTERN)


def deobfuscate(prepared: str) -> str:
    s = _re_hxxp.sub("http", prepared)
    s = _re_obf_dot.sub(".", s)
    s = _re_spaced_dot.sub(r"\1.\2", s)
    return _re_spaced_dot_2.sub(r"\1.\2", s)


def _sorted(values) -> list[str]:
    # Postgres sorts text[] with the database collation; PATAS databases use "C" (code point order,
    # the same as Python's str order for the UTF-8 encoded text).
    return sorted(set(values))


def extract_urls(prepared: str) -> list[str]:
    out = []
    for m in _re_url.finditer(deobfuscate(prepared)):
        u = _re_trailing.sub("", m.group())
        if not _re_url_keep.search(u):
            continue
        out.append(u if _re_scheme.search(u) else "http://" + u)
    return _sorted(out)


def url_host(url: str) -> str:
    return _re_host.sub(r"\1", url)


def extract_hosts(prepared: str) -> list[str]:
    return _sorted(url_host(u) for u in extract_urls(prepared))


def extract_emails(prepared: str) -> list[str]:
    return _sorted(m.group() for m in _re_email.finditer(deobfuscate(prepared)))


def extract_handles(prepared: str) -> list[str]:
    d = deobfuscate(prepared)
    found = [m.group(1) for m in _re_handle.finditer(d)]
    found += [m.group(1) for m in _re_tme.finditer(d) if m.group(1) not in TME_RESERVED]
    return _sorted(found)


def canonical_phone(match: str) -> str | None:
    digits = _re_non_digit.sub("", match.translate(str.maketrans("oli", "011")))
    if match.startswith("+"):
        digits = _re_non_digit.sub("", match.replace("(0)", "").translate(str.maketrans("oli", "011")))
    elif digits.startswith("00"):
        digits = digits[2:]
    return digits if 7 <= len(digits) <= 15 else None


def extract_phones(prepared: str) -> list[str]:
    found = (canonical_phone(m.group()) for m in _re_phone.finditer(prepared))
    return _sorted(p for p in found if p)


def extract_short_codes(prepared: str) -> list[str]:
    return _sorted(m.group(1) for m in _re_short_code.finditer(prepared))


def canonical_money(match: str) -> str | None:
    currency = CURRENCIES.get(_re_money_currency.sub("", match))
    amount = _re_money_amount.sub("", match)
    return f"{currency} {amount}" if currency else None


def extract_money(prepared: str) -> list[str]:
    found = [canonical_money(m.group()) for m in _re_money_prefix.finditer(prepared)]
    found += [canonical_money(m.group()) for m in _re_money_suffix.finditer(prepared)]
    return _sorted(v for v in found if v)


# --------------------------------------------------------------------------------------------------
# Word n-grams (over normalized text)
# --------------------------------------------------------------------------------------------------

ALL_DIGITS_PATTERN = "^[0-9]+$"
_re_all_digits = re.compile(ALL_DIGITS_PATTERN)


def tokens(normalized: str) -> list[str]:
    return [t for t in _re_non_word.sub(" ", normalized).split(" ") if t]


def ngrams(normalized: str, stop_words: frozenset[str] | set[str], max_n: int = 3) -> list[str]:
    """Distinct word 1..max_n grams whose first and last word are neither stop words nor numbers."""
    toks = tokens(normalized)
    edge_ok = [t not in stop_words and not _re_all_digits.match(t) for t in toks]
    out = set()
    for i in range(len(toks)):
        if not edge_ok[i]:
            continue
        for n in range(1, max_n + 1):
            j = i + n - 1
            if j < len(toks) and edge_ok[j]:
                out.add(" ".join(toks[i : j + 1]))
    return sorted(out)


# --------------------------------------------------------------------------------------------------
# Everything the SQL twin computes for one message
# --------------------------------------------------------------------------------------------------


def message_entities(text: str) -> dict[str, object]:
    p = prepare_text(text)
    n = normalize_prepared(p)
    urls = extract_urls(p)
    return {
        "normalized_text": n,
        "signature": template_signature(n, normalized=True),
        "urls": urls,
        "hosts": _sorted(url_host(u) for u in urls),
        "phones": extract_phones(p),
        "short_codes": extract_short_codes(p),
        "handles": extract_handles(p),
        "emails": extract_emails(p),
        "money": extract_money(p),
    }


def _case_check_classes() -> dict[str, str]:
    """Per case block, a class of the code points whose NFKC holds an upper-case letter of the
    block: the SQL twin tests the raw text with it before NFKC (cheap), then translates after."""
    members: dict[str, list[int]] = {name: [] for name in CASE_BLOCK_TABLES}
    # NFKC also composes across characters (У + U+0308 -> Ӱ): a text holding any non-initial
    # character of the decomposition of some upper-case letter (a combining mark, in practice),
    # or a character whose decomposition holds one, may gain an upper-case letter of any block.
    marks = {c for t in CASE_BLOCK_TABLES.values() for k in t for c in unicodedata.normalize("NFKD", k)[1:]}
    for cp in range(0x80, 0x110000):
        ch = chr(cp)
        if unicodedata.category(ch) in ("Cn", "Cs"):
            continue
        folded = unicodedata.normalize("NFKC", ch)
        composing = any(c in marks for c in unicodedata.normalize("NFKD", ch))
        for name, table in CASE_BLOCK_TABLES.items():
            if composing or any(c in table for c in folded):
                members[name].append(cp)
    out = {}
    for name, cps in members.items():
        ranges: list[tuple[int, int]] = []
        for cp in cps:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
        out[name] = "[" + _class(ranges) + "]"
    return out


def sql_text_patterns() -> dict[str, str]:
    """Everything macros/text_pattern.sql embeds (slow to build: reference_data.py calls it)."""
    patterns = dict(SQL_TEXT_PATTERNS)
    for name, cls in _case_check_classes().items():
        patterns[f"case_{name}_check"] = cls
    return patterns


# The strings the SQL macros embed (macros/text_pattern.sql is generated from this by
# python_steps/reference_data.py; a test checks the generated file is current).
SQL_TEXT_PATTERNS: dict[str, str] = {
    "unassigned": UNASSIGNED_PATTERN,
    "common_only": COMMON_ONLY_PATTERN,
    "ascii_only": "^[\\u0001-\\u007f]*$",
    "space_needed": "[\\u0001-\\u001f\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]|  |^ | $",
    "digit": "[0-9]",
    "invisible": INVISIBLE_PATTERN,
    "space": SPACE_PATTERN,
    **{f"case_{name}_from": "".join(t) for name, t in CASE_BLOCK_TABLES.items()},
    **{f"case_{name}_to": "".join(t.values()) for name, t in CASE_BLOCK_TABLES.items()},
    "mixed_script": MIXED_SCRIPT_PATTERN,
    "script_word_or_gap": f"{SCRIPT_WORD_PATTERN}|{SCRIPT_GAP_PATTERN}",
    "not_latin": NOT_LATIN_PATTERN,
    "not_cyrillic": NOT_CYRILLIC_PATTERN,
    "not_greek": NOT_GREEK_PATTERN,
    "to_latin_from": TO_LATIN_FROM,
    "to_latin_to": TO_LATIN_TO,
    "to_cyrillic_from": TO_CYRILLIC_FROM,
    "to_cyrillic_to": TO_CYRILLIC_TO,
    **{f"digit_{d}": digit_pattern_sql(d) for d in DIGIT_LOOKALIKES},
    "triple": TRIPLE_PATTERN,
    "squeezable_triple": SQUEEZABLE_TRIPLE_PATTERN,
    "digit_run_check": f"[a-z{TO_LATIN_FROM}][0135]+[a-z{TO_LATIN_FROM}]",
    "non_word": NON_WORD_PATTERN,
    "all_digits": ALL_DIGITS_PATTERN,
    "mask_at": MASK_AT_PATTERN,
    "mask_url": MASK_URL_PATTERN,
    "mask_number": MASK_NUMBER_PATTERN,
    # Cheap necessary conditions: the SQL models run an extractor only on texts that pass these.
    "deobfuscate_check": f"hxxp|\\[\\.\\]|\\(\\.\\)|\\{{\\.\\}}|\\[dot\\]|\\(dot\\)| \\.|\\. (?:{_TLD_ALT})",
    # the one branch of deobfuscate_check that is not a fixed string (macro maybe_obfuscated tests
    # the fixed ones with strpos and this regex only on texts holding '. ')
    "spaced_tld_check": f"\\. (?:{_TLD_ALT})",
    "url_check": "\\.[a-z\\u0430-\\u044f\\u0451][a-z\\u0430-\\u044f\\u0451]",
    # the phone pattern's body without its lookarounds: half the texts the five-class check passed
    "phone_check": "[0-9][0-9oli() .-]{5,20}[0-9]",
    "short_code_check": f"{_SHORT_CODE_TO}[0-9][0-9][0-9][0-9]",
    "money_check": "[$£€₽¥]|usd|eur|gbp|rub|руб|dollars|pounds|euro",
    "hxxp": HXXP_PATTERN,
    "obfuscated_dot": OBFUSCATED_DOT_PATTERN,
    "spaced_dot": SPACED_DOT_PATTERN,
    "spaced_dot_2": SPACED_DOT_PATTERN_2,
    "url": URL_PATTERN,
    "url_keep": URL_KEEP_PATTERN,
    "trailing_punct": TRAILING_PUNCT_PATTERN,
    "has_scheme": HAS_SCHEME_PATTERN,
    "host": HOST_PATTERN,
    "email": EMAIL_PATTERN,
    "handle": HANDLE_PATTERN,
    "tme": TME_PATTERN,
    "phone": PHONE_PATTERN,
    "non_digit": PHONE_NON_DIGIT_PATTERN,
    "short_code": SHORT_CODE_PATTERN,
    "money_prefix": MONEY_PREFIX_PATTERN,
    "money_suffix": MONEY_SUFFIX_PATTERN,
    "money_amount_strip": MONEY_AMOUNT_STRIP_PATTERN,
    "money_currency_strip": MONEY_CURRENCY_STRIP_PATTERN,
}


# --------------------------------------------------------------------------------------------------
# Registrable domain (eTLD+1) from the Public Suffix List seed (twin of int_hosts_resolved)
# --------------------------------------------------------------------------------------------------


def load_public_suffixes(path=None) -> dict[str, set[str]]:
    """``{'normal': {...}, 'wildcard': {...}, 'exception': {...}}`` from seeds/public_suffixes.csv."""
    import csv
    from pathlib import Path

    path = Path(path) if path else Path(__file__).resolve().parents[2] / "seeds" / "public_suffixes.csv"
    rules: dict[str, set[str]] = {"normal": set(), "wildcard": set(), "exception": set()}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            rules[row["rule_kind"]].add(row["suffix"])
    return rules


def registrable_domain(host: str, rules: dict[str, set[str]]) -> str | None:
    labels = host.split(".")
    n = len(labels)
    exception = None
    best = 1
    for k in range(n):
        suffix = ".".join(labels[k:])
        length = n - k
        if suffix in rules["exception"]:
            exception = max(exception or 0, length - 1)
        if suffix in rules["normal"]:
            best = max(best, length)
        if k + 1 < n and ".".join(labels[k + 1 :]) in rules["wildcard"]:
            best = max(best, length)
    ps = exception if exception is not None else best
    return ".".join(labels[n - ps - 1 :]) if n > ps else None
