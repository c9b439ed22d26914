"""Label feedback input: one verdict per JSONL line, every bad line named (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from python_steps.ingest.feedback import FeedbackError, make_feedback, read_feedback_file


def test_a_feedback_file_reads_ids_verdicts_sources_and_notes(tmp_path: Path) -> None:
    f = tmp_path / "f.jsonl"
    f.write_text(
        '{"id": "m1", "verdict": "ham", "source": "user_appeal", "note": "my own shop"}\n'
        "\n"
        '{"external_id": "m2", "verdict": "spam"}\n'
    )
    items = read_feedback_file(f)
    assert [(i.external_id, i.verdict, i.source, i.note) for i in items] == [
        ("m1", "ham", "user_appeal", "my own shop"),
        ("m2", "spam", "moderator", None),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "m1", "verdict": "maybe"}', "line 2: verdict must be 'spam' or 'ham'"),
        ('{"id": "", "verdict": "ham"}', "line 2: the message id must be a non-empty string"),
        ('{"id": 7, "verdict": "ham"}', "line 2: the message id must be a non-empty string"),
        ('{"id": "m1", "verdict": "ham", "source": "Robert\'); drop table x"}', "line 2: source must be"),
        ('{"id": "m1", "verdict": "ham", "label": "x"}', "line 2: unknown field(s) ['label']"),
        ("[1, 2]", "line 2: not a JSON object"),
        ('{"id": "m1", ', "line 2: not a JSON object"),
    ],
)
def test_the_first_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "f.jsonl"
    f.write_text('{"id": "ok", "verdict": "ham"}\n' + line + "\n")
    with pytest.raises(FeedbackError) as err:
        read_feedback_file(f)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_an_empty_or_missing_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(FeedbackError, match="no feedback lines"):
        read_feedback_file(tmp_path / "empty.jsonl")
    with pytest.raises(FeedbackError, match=r"missing\.jsonl"):
        read_feedback_file(tmp_path / "missing.jsonl")


def test_a_note_is_bounded() -> None:
    assert make_feedback("m1", "ham", note="x" * 2000).note == "x" * 2000
    with pytest.raises(FeedbackError, match="note"):
        make_feedback("m1", "ham", note="x" * 2001)
