"""Drafting's distinct hit keys (python_steps.mining.drafting._sorted_unique) are np.unique's."""

from __future__ import annotations

import numpy as np
import pytest

from python_steps.mining.drafting import _sorted_unique


@pytest.mark.parametrize("n", [0, 1, 2, 17, 10_000])
def test_the_distinct_keys_are_np_unique(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.integers(0, max(n // 3, 1), size=n, dtype=np.int64) * 1_000_003
    got = _sorted_unique(values)
    want = np.unique(values)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
