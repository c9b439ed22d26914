"""What a cluster's signals may carry to an LLM: the privacy modes and the redactor (pure functions).

Two modes, set per run (``RunSpec.llm_privacy``, ``patas run --llm-privacy``, Dagster run config):

- ``standard`` (default): aggregated signals plus a few examples and ham counter-examples, every
  text redacted: emails, card numbers (Luhn-checked), IBANs (mod-97 checksum), phone numbers,
  handles and long digit runs are replaced by placeholders (``<email>``, ``<card>``, ``<iban>``,
  ``<phone>``, ``<handle>``, ``<number>``), unless the value is one of the pattern's own entities.
  The entity list keeps the pattern's own entities and non-personal ones (domains, hosts, urls,
  short codes, signatures, redacted inside); personal entities (phone, email, handle) that are not
  the pattern's own are dropped and only counted (``redacted_entities``).
- ``strict``: aggregates only: no example text, no ham counter-example, no entity other than the
  pattern's own; phrases are kept (they are shared by at least half of the cluster), redacted.

An entity is *the pattern's own* when it is carried by a real share of the cluster's messages
(at least :data:`OWN_MIN_SHARE` of them and at least :data:`OWN_MIN_MESSAGES`): the campaign's
number or domain, which the rule must name. A number that appears in one message of forty is
somebody's, not the campaign's.

Nothing here touches a database or the network; :func:`prepare_signals` is the one gate the LLM
client sends through.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from python_steps.text.normalize import canonical_phone

PRIVACY_MODES = ("standard", "strict")
DEFAULT_PRIVACY = "standard"

OWN_MIN_SHARE = 0.2
OWN_MIN_MESSAGES = 2
LONG_DIGITS = 6  # a run of this many digits (or more, separators allowed) that is not own is masked
PERSONAL_KINDS = ("phone", "email", "handle")
TEXT_LIMIT = 240

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}(?![\w-])")
# IBAN: country code, check digits, then 11 to 30 letters or digits, compact or in groups of four.
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?:(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?|[A-Za-z0-9]{11,30})"
    r"(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|\()?[0-9][0-9 ().-]{5,20}[0-9](?![0-9])")
_HANDLE = re.compile(r"(?<![\w.@-])@([A-Za-z0-9_]{2,32})(?![\w@])")
# digits, single spaces, dots or dashes between them allowed ("4111 1111 1111 1112", "12-34-56")
_DIGITS = re.compile(rf"(?<![0-9])[0-9](?:[ .-]?[0-9]){{{LONG_DIGITS - 1},}}(?![0-9])")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (13 to 19 digits: a payment card number)."""
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    """The ISO 13616 mod-97 check of an IBAN (spaces ignored, 15 to 34 characters)."""
    s = value.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", s):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@dataclass(frozen=True)
class OwnEntities:
    """The pattern's own entities, in the extractor's canonical forms."""

    phones: frozenset[str] = frozenset()  # digits only
    short_codes: frozenset[str] = frozenset()
    literals: frozenset[str] = frozenset()  # domains, hosts, urls, emails: lower case
    handles: frozenset[str] = frozenset()  # without '@', lower case

    @classmethod
    def from_entities(cls, top_entities: Iterable[dict], message_count: int | None) -> OwnEntities:
        phones, codes, literals, handles = set(), set(), set(), set()
        for e in top_entities:
            if not is_own(e, message_count):
                continue
            kind, value = e.get("kind"), str(e.get("value", ""))
            if not value:
                continue
            if kind == "phone":
                phones.add(re.sub(r"[^0-9]", "", value))
            elif kind == "short_code":
                codes.add(value)
            elif kind == "handle":
                handles.add(value.lower().removeprefix("@"))
            elif kind in ("domain", "host", "url", "email"):
                literals.add(value.lower())
        return cls(frozenset(phones), frozenset(codes), frozenset(literals), frozenset(handles))

    def has_phone(self, digits: str) -> bool:
        if digits in self.phones:
            return True
        # The same number written with or without its country code: equal national significant digits.
        return len(digits) >= 9 and any(len(p) >= 9 and p[-9:] == digits[-9:] for p in self.phones)

    def has_digits(self, digits: str) -> bool:
        return digits in self.short_codes or self.has_phone(digits)


def is_own(entity: dict, message_count: int | None) -> bool:
    """True when the entity is carried by enough of the cluster to be the pattern's own."""
    n = int(entity.get("messages") or 0)
    if not message_count:
        return n >= OWN_MIN_MESSAGES
    return n >= max(OWN_MIN_MESSAGES, math.ceil(OWN_MIN_SHARE * message_count))


def redact_text(text: str, own: OwnEntities | None = None, limit: int = TEXT_LIMIT) -> str:
    """The text with personal data replaced by placeholders; the pattern's own entities stay.

    Detectors run in a fixed order (emails, own entities, IBANs, cards, phones, handles, long digit
    runs); a span claimed by one is not looked at by the next, so an own phone number is not
    masked as a digit run and a card number is ``<card>``, not ``<phone>``. Cut to ``limit``
    characters after redaction (a cut never splits a placeholder from the text it replaced)."""
    own = own or OwnEntities()
    taken: list[tuple[int, int, str | None]] = []  # (start, end, placeholder or None = keep)

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b, _ in taken)

    # Emails first: an own domain must not shelter the mailbox in front of it.
    for m in _EMAIL.finditer(text):
        taken.append((*m.span(), None if m.group().lower() in own.literals else "<email>"))
    for lit in sorted(own.literals, key=len, reverse=True):
        for m in re.finditer(re.escape(lit), text, re.IGNORECASE):
            if free(*m.span()):
                taken.append((*m.span(), None))
    for m in _IBAN.finditer(text):
        cand = m.group()
        while cand and not iban_valid(cand):  # a greedy match may run into the next word: trim it
            cand = cand[: cand.rfind(" ")] if " " in cand else ""
        if cand and free(m.start(), m.start() + len(cand)):
            taken.append((m.start(), m.start() + len(cand), "<iban>"))
    for m in _CARD.finditer(text):
        digits = re.sub(r"[^0-9]", "", m.group())
        if luhn_valid(digits) and not own.has_digits(digits) and free(*m.span()):
            taken.append((*m.span(), "<card>"))
    for m in _PHONE.finditer(text):
        digits = canonical_phone(m.group())
        if digits and free(*m.span()):
            taken.append((*m.span(), None if own.has_phone(digits) else "<phone>"))
    for m in _HANDLE.finditer(text):
        if free(*m.span()):
            taken.append((*m.span(), None if m.group(1).lower() in own.handles else "<handle>"))
    for m in _DIGITS.finditer(text):
        if free(*m.span()):
            digits = re.sub(r"[^0-9]", "", m.group())
            taken.append((*m.span(), None if own.has_digits(digits) else "<number>"))
    out, pos = [], 0
    for s, e, placeholder in sorted(taken):
        out.append(text[pos:s])
        out.append(text[s:e] if placeholder is None else placeholder)
        pos = e
    out.append(text[pos:])
    redacted = "".join(out)
    if len(redacted) > limit:
        cut = redacted[:limit]
        lt = cut.rfind("<")
        if lt > cut.rfind(">"):  # do not leave half a placeholder
            cut = cut[:lt]
        redacted = cut
    return redacted


def _entity_for_llm(entity: dict, own: OwnEntities, own_entity: bool) -> dict | None:
    if own_entity:
        return dict(entity)
    if entity.get("kind") in PERSONAL_KINDS:
        return None
    value = redact_text(str(entity.get("value", "")), own, limit=10_000)
    if "<" in value:  # a url carrying a number, a domain made of an account number: not for the LLM
        return None
    return {**entity, "value": value}


def prepare_signals(signals: dict, mode: str = DEFAULT_PRIVACY) -> dict:
    """The cluster signals an LLM may see under ``mode`` (a new dict; ``signals`` is not changed)."""
    if mode not in PRIVACY_MODES:
        raise ValueError(f"privacy mode must be one of {', '.join(PRIVACY_MODES)}, not {mode!r}")
    count = signals.get("message_count")
    entities = list(signals.get("top_entities") or [])
    own = OwnEntities.from_entities(entities, count)
    kept, redacted_counts = [], {}
    for e in entities:
        mine = is_own(e, count)
        entity = None if mode == "strict" and not mine else _entity_for_llm(e, own, mine)
        if entity is None:
            kind = str(e.get("kind"))
            redacted_counts[kind] = redacted_counts.get(kind, 0) + 1
        else:
            kept.append(entity)
    phrases = []
    for p in signals.get("top_phrases") or []:
        phrase = redact_text(str(p.get("phrase", "")), own)
        if phrase.strip():
            phrases.append({**p, "phrase": phrase})
    out = {
        "cluster_id": signals.get("cluster_id"),
        "message_count": count,
        "privacy": mode,
        "top_entities": kept,
        "top_phrases": phrases,
    }
    if redacted_counts:
        out["redacted_entities"] = dict(sorted(redacted_counts.items()))
    if mode == "standard":
        out["examples"] = [redact_text(str(t), own) for t in signals.get("examples") or []]
        out["counter_examples"] = [redact_text(str(t), own) for t in signals.get("counter_examples") or []]
    return out
