"""Run windows: which messages a run mines rules on and which it evaluates them on.

Every run states its windows explicitly (``[start, end)`` on event time). When the caller gives
none, they are derived from the data, never from the wall clock: a time split (the last
``evaluation_fraction`` of the event-time span is held out) when the messages carry timestamps,
else a hash split on the template signature (so a template never straddles the split).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import psycopg

SPLIT_MODES = ("auto", "time", "hash")


@dataclass(frozen=True)
class RunWindows:
    split_mode: str  # 'time' | 'hash'
    mining_start: str | None = None
    mining_end: str | None = None
    evaluation_start: str | None = None
    evaluation_end: str | None = None
    evaluation_share: int = 30

    def __post_init__(self) -> None:
        if self.split_mode not in ("time", "hash"):
            raise ValueError(f"split_mode must be 'time' or 'hash', not {self.split_mode!r}")
        if self.split_mode == "time":
            bounds = [self.mining_start, self.mining_end, self.evaluation_start, self.evaluation_end]
            if any(b is None for b in bounds):
                raise ValueError(
                    "a time split needs mining_start, mining_end, evaluation_start, evaluation_end"
                )
            ms, me, es, ee = (_parse_ts(b) for b in bounds)
            if not (ms < me and es < ee):
                raise ValueError("each window must have start < end")
            if es < me:
                raise ValueError(
                    f"the evaluation window must not start before the mining window ends "
                    f"(mining ends {self.mining_end}, evaluation starts {self.evaluation_start})"
                )
        elif not 1 <= self.evaluation_share <= 99:
            raise ValueError("evaluation_share must be between 1 and 99 (percent of split buckets)")

    def dbt_vars(self, run_id: str) -> dict[str, object]:
        return {
            "patas_run_id": run_id,
            "patas_split_mode": self.split_mode,
            "patas_mining_start": self.mining_start,
            "patas_mining_end": self.mining_end,
            "patas_evaluation_start": self.evaluation_start,
            "patas_evaluation_end": self.evaluation_end,
            "patas_evaluation_share": self.evaluation_share,
        }

    def describe(self) -> str:
        if self.split_mode == "hash":
            return f"hash split on template signature: {self.evaluation_share}% of buckets held out for evaluation"
        return (
            f"mining [{self.mining_start}, {self.mining_end}), "
            f"evaluation [{self.evaluation_start}, {self.evaluation_end})"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def resolve_windows(
    conn: psycopg.Connection | None,
    *,
    split: str = "auto",
    mining_start: str | None = None,
    mining_end: str | None = None,
    evaluation_start: str | None = None,
    evaluation_end: str | None = None,
    evaluation_share: int = 30,
    evaluation_fraction: float = 0.3,
    min_timestamped_share: float = 0.95,
) -> RunWindows:
    """Windows for a run, from explicit bounds or, failing that, from the data."""
    if split not in SPLIT_MODES:
        raise ValueError(f"split must be one of {SPLIT_MODES}, not {split!r}")
    explicit = [mining_start, mining_end, evaluation_start, evaluation_end]
    if any(v is not None for v in explicit):
        if split == "hash":
            raise ValueError("explicit window bounds need a time split, not --split hash")
        if any(v is None for v in explicit):
            raise ValueError("give all four window bounds, or none and let PATAS derive them from the data")
        return RunWindows("time", mining_start, mining_end, evaluation_start, evaluation_end)
    if split == "hash":
        return RunWindows("hash", evaluation_share=evaluation_share)
    if conn is None:
        raise ValueError("deriving windows from the data needs a warehouse connection")
    row = conn.execute(
        "select count(*), count(event_at), min(event_at), max(event_at) from raw.messages"
    ).fetchone()
    total, stamped, lo, hi = row
    if total and stamped / total >= min_timestamped_share and lo is not None and hi > lo:
        cut = lo + (hi - lo) * (1 - evaluation_fraction)
        # Whole seconds keep the windows readable and stable across drivers.
        cut = cut.replace(microsecond=0)
        end = hi.replace(microsecond=0) + (datetime.min.replace(second=1) - datetime.min)
        return RunWindows("time", _iso(lo), _iso(cut), _iso(cut), _iso(end))
    if split == "time":
        raise ValueError(
            f"a time split needs timestamps: only {stamped} of {total} messages have one "
            f"(use --split hash, or give explicit windows)"
        )
    return RunWindows("hash", evaluation_share=evaluation_share)
