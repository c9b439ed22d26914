import os

from python_steps.ingest.inbox import pending_files


def test_pending_files_oldest_first_and_known_suffixes_only(tmp_path):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.csv.gz"
    a.write_text("{}\n")
    b.write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".partial.jsonl").write_text("ignored while being written")
    os.utime(a, ns=(2_000_000_000, 2_000_000_000))
    os.utime(b, ns=(1_000_000_000, 1_000_000_000))
    found = list(pending_files(tmp_path))
    assert [f.path.name for f in found] == ["b.csv.gz", "a.jsonl"]


def test_run_key_changes_when_a_file_is_rewritten(tmp_path):
    f = tmp_path / "day.jsonl"
    f.write_text("{}\n")
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))
    first = next(pending_files(tmp_path)).run_key
    f.write_text("{}\n{}\n")
    os.utime(f, ns=(3_000_000_000, 3_000_000_000))
    assert next(pending_files(tmp_path)).run_key != first
