"""The inbox folder: new message files dropped there are ingested by a sensor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".csv", ".csv.gz")


@dataclass(frozen=True)
class InboxFile:
    path: Path
    run_key: str


def pending_files(inbox: Path) -> Iterator[InboxFile]:
    """Files with a known suffix, oldest first. The run key changes when a file is rewritten, so a
    replaced file is picked up again (and ingestion itself skips rows already loaded)."""
    files = [
        p for p in inbox.iterdir() if p.is_file() and p.name.endswith(SUFFIXES) and not p.name.startswith(".")
    ]
    for path in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name)):
        st = path.stat()
        yield InboxFile(path=path, run_key=f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
