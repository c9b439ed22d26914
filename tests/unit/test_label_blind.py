"""The quality benchmark's label-blind test slice: labels hidden from the pipeline, nothing lost."""

from __future__ import annotations

import gzip
import json

from patas.bench.quality import label_blind_copy
from python_steps.text.normalize import split_bucket, template_signature


def _bucket(text: str) -> int:
    return split_bucket(template_signature(text))


def _records() -> list[dict]:
    texts = [f"message number {w} about {w}" for w in ("lunch", "prize", "train", "meeting", "offer")]
    texts += [f"call {w} now" for w in ("alice", "bob", "carol", "dave", "erin", "frank", "gina")]
    return [
        {"id": f"m{i}", "text": t, "is_spam": i % 3 == 0, "meta": {"label_raw": "spam", "language": "en"}}
        for i, t in enumerate(texts)
    ]


def test_the_slice_loses_its_labels_and_every_line_is_kept(tmp_path):
    records = _records()
    share = 50
    lines = [json.dumps(r) for r in records] + ["{not json", '{"text": "no id", "is_spam": true}', ""]
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    hidden = label_blind_copy(src, out, share)

    expected = {r["id"]: r["is_spam"] for r in records if _bucket(r["text"]) < share}
    assert hidden == expected
    assert 0 < len(hidden) < len(records)  # the fixture has both kinds of bucket
    written = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(written) == len(lines)  # same lines, same order
    for original, line in zip(lines, written, strict=True):
        if not original.startswith('{"id"'):
            assert line == original  # malformed / id-less / blank lines: copied for ingest to report
            continue
        rec, got = json.loads(original), json.loads(line)
        assert got["id"] == rec["id"] and got["text"] == rec["text"]
        if rec["id"] in hidden:
            assert "is_spam" not in got and "label_raw" not in got["meta"]
            assert got["meta"]["language"] == "en"
        else:
            assert got == rec


def test_share_zero_hides_nothing(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert label_blind_copy(src, out, 0) == {}
    assert out.read_text(encoding="utf-8") == src.read_text(encoding="utf-8")
