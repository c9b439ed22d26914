import pytest

from python_steps.mining.windows import RunWindows, resolve_windows


def test_hash_split_needs_no_connection():
    w = resolve_windows(None, split="hash", evaluation_share=25)
    assert w.split_mode == "hash"
    assert w.dbt_vars("r1")["patas_evaluation_share"] == 25
    assert w.dbt_vars("r1")["patas_run_id"] == "r1"


def test_explicit_windows_become_a_time_split():
    w = resolve_windows(
        None,
        mining_start="2026-01-01T00:00:00+00:00",
        mining_end="2026-01-20T00:00:00+00:00",
        evaluation_start="2026-01-20T00:00:00+00:00",
        evaluation_end="2026-02-01T00:00:00+00:00",
    )
    assert w.split_mode == "time"
    assert "evaluation [2026-01-20" in w.describe()


def test_partial_windows_are_refused():
    with pytest.raises(ValueError, match="all four"):
        resolve_windows(None, mining_start="2026-01-01")


def test_evaluation_must_not_precede_mining_end():
    with pytest.raises(ValueError, match="must not start before"):
        RunWindows("time", "2026-01-01", "2026-01-20", "2026-01-10", "2026-02-01")


def test_explicit_windows_with_hash_split_are_refused():
    with pytest.raises(ValueError, match="time split"):
        resolve_windows(
            None, split="hash", mining_start="a", mining_end="b", evaluation_start="c", evaluation_end="d"
        )


@pytest.mark.parametrize("share", [0, 100])
def test_hash_share_bounds(share):
    with pytest.raises(ValueError, match="between 1 and 99"):
        RunWindows("hash", evaluation_share=share)


def test_json_round_trip_is_sorted_and_stable():
    w = RunWindows("hash", evaluation_share=30)
    assert w.to_json() == RunWindows("hash", evaluation_share=30).to_json()
    assert w.to_json().index('"evaluation_end"') < w.to_json().index('"split_mode"')
