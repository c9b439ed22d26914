"""The LLM privacy gate: the redactor and the two modes (pure, no database)."""

from __future__ import annotations

import json

import pytest

from python_steps.mining.privacy import (
    OwnEntities,
    iban_valid,
    is_own,
    luhn_valid,
    prepare_signals,
    redact_text,
)

OWN_PHONE = "447700900123"
FOREIGN_PHONE = "447911123456"
ENTITIES = [
    {"kind": "domain", "value": "win-prize.example", "messages": 38},
    {"kind": "phone", "value": OWN_PHONE, "messages": 30},
    {"kind": "short_code", "value": "87121", "messages": 12},
    {"kind": "phone", "value": FOREIGN_PHONE, "messages": 1},
    {"kind": "email", "value": "john.doe@example.org", "messages": 1},
    {"kind": "handle", "value": "alice_w", "messages": 1},
    {"kind": "domain", "value": "bank.example", "messages": 2},
]
OWN = OwnEntities.from_entities(ENTITIES, 40)


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("5555555555554444") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("411111111111")  # 12 digits: not a card length
    assert not luhn_valid("4111-1111-1111-1111")


def test_iban_checksum():
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and iban_valid("DE89370400440532013000")
    assert iban_valid("gb82west12345698765432")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")  # one digit off
    assert not iban_valid("GB82WEST")  # too short


def test_own_is_a_share_of_the_cluster():
    assert is_own({"messages": 8}, 40) and not is_own({"messages": 7}, 40)
    assert not is_own({"messages": 1}, 3)  # never a single message
    assert OWN.phones == {OWN_PHONE} and OWN.short_codes == {"87121"}
    assert OWN.literals == {"win-prize.example"} and OWN.handles == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.doe@example.org now", "mail <email> now"),
        ("card 4111 1111 1111 1111 ok", "card <card> ok"),
        ("card 4111-1111-1111-1111", "card <card>"),
        # not Luhn-valid: still a long digit run, masked as a number (never left as it is)
        ("card 4111 1111 1111 1112 ok", "card <number> ok"),
        ("pay to GB82 WEST 1234 5698 7654 32 today", "pay to <iban> today"),
        ("pay to DE89370400440532013000.", "pay to <iban>."),
        ("pay to DE89 3704 0044 0532 0130 00 now", "pay to <iban> now"),
        ("call +44 7911 123456 now", "call <phone> now"),
        ("call (0791) 112-3456", "call <phone>"),
        ("ask @alice_w", "ask <handle>"),
        ("sort code 20-24-55", "sort code <number>"),
        ("otp 482913 expires", "otp <number> expires"),
        # the pattern's own entities stay, also written differently
        ("call +44 7700 900123 now", "call +44 7700 900123 now"),
        ("call 07700 900123 now", "call 07700 900123 now"),
        ("txt WIN to 87121", "txt WIN to 87121"),
        ("go to WIN-PRIZE.example/claim", "go to WIN-PRIZE.example/claim"),
        # an own domain does not shelter a mailbox on it
        ("write to boss@win-prize.example", "write to <email>"),
        # short numbers and amounts are not personal
        ("win £1000 in 24 hours", "win £1000 in 24 hours"),
    ],
)
def test_redact_text(text, expected):
    assert redact_text(text, OWN) == expected


def test_redact_is_idempotent_and_cuts_without_half_placeholders():
    text = "x" * 230 + " 4111 1111 1111 1111"
    once = redact_text(text, OWN)
    assert redact_text(once, OWN) == once
    cut = redact_text("y" * 236 + " john@example.org", OWN)
    assert len(cut) <= 240 and "<" not in cut  # "<ema" would be half a placeholder
    assert redact_text("a " * 200) == ("a " * 120)


SIGNALS = {
    "cluster_id": "c1",
    "message_count": 40,
    "top_entities": ENTITIES,
    "top_phrases": [
        {"phrase": "claim your prize", "cluster_messages": 35, "spam_count": 120, "ham_count": 0},
        {"phrase": "call 07911123456", "cluster_messages": 20, "spam_count": 20, "ham_count": 0},
    ],
    "examples": [
        "Claim your prize at win-prize.example: call +44 7700 900123, not +44 7911 123456",
        "Prize! send card 4111 1111 1111 1111 and IBAN GB82 WEST 1234 5698 7654 32 to john.doe@example.org",
    ],
    "counter_examples": ["Hi, it's Mary (mary@home.example), did you claim the parking refund?"],
}


def test_standard_redacts_examples_and_entity_lists():
    out = prepare_signals(SIGNALS, "standard")
    blob = json.dumps(out)
    for leak in ("john.doe", "4111", "GB82", "7911", "alice_w", "mary@"):
        assert leak not in blob, leak
    assert out["examples"][0] == "Claim your prize at win-prize.example: call +44 7700 900123, not <phone>"
    assert (
        "<card>" in out["examples"][1] and "<iban>" in out["examples"][1] and "<email>" in out["examples"][1]
    )
    assert out["counter_examples"] == ["Hi, it's Mary (<email>), did you claim the parking refund?"]
    kept = {(e["kind"], e["value"]) for e in out["top_entities"]}
    assert kept == {
        ("domain", "win-prize.example"),
        ("phone", OWN_PHONE),
        ("short_code", "87121"),
        ("domain", "bank.example"),  # not personal: kept in standard
    }
    assert out["redacted_entities"] == {"email": 1, "handle": 1, "phone": 1}
    assert out["top_phrases"][1]["phrase"] == "call <phone>"
    assert SIGNALS["examples"][1].startswith("Prize! send card 4111"), "the input is not changed"


def test_strict_sends_aggregates_only():
    out = prepare_signals(SIGNALS, "strict")
    assert "examples" not in out and "counter_examples" not in out
    assert {(e["kind"], e["value"]) for e in out["top_entities"]} == {
        ("domain", "win-prize.example"),
        ("phone", OWN_PHONE),
        ("short_code", "87121"),
    }
    blob = json.dumps(out)
    for leak in ("Claim your prize at", "parking", "bank.example", "7911", "john.doe", "4111"):
        assert leak not in blob, leak
    assert out["privacy"] == "strict" and out["message_count"] == 40


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="privacy mode"):
        prepare_signals(SIGNALS, "relaxed")


def test_entities_carrying_a_number_are_dropped_unless_own():
    signals = {
        "cluster_id": "c",
        "message_count": 10,
        "top_entities": [
            {
                "kind": "url",
                "value": "http://win-prize.example/u/4419201",
                "messages": 1,
            },  # a per-person link
            {
                "kind": "url",
                "value": "http://win-prize.example/claim/99120033",
                "messages": 9,
            },  # the campaign's
            {"kind": "short_code", "value": "87121", "messages": 1},
        ],
    }
    out = prepare_signals(signals, "standard")
    assert [e["value"] for e in out["top_entities"]] == ["http://win-prize.example/claim/99120033", "87121"]
    assert out["redacted_entities"] == {"url": 1}
    assert [e["value"] for e in prepare_signals(signals, "strict")["top_entities"]] == [
        "http://win-prize.example/claim/99120033"
    ]
