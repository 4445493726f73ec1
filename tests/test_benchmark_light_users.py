"""The light-users benchmark's paired comparison of two rankings."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.light_users import paired_gain


def test_paired_gain_is_the_mean_difference_with_its_paired_error() -> None:
    old = np.array([0.1, 0.2, 0.3, 0.4])
    new = old + np.array([0.1, 0.0, 0.1, 0.0])
    got = paired_gain(new, old)
    assert got["gain"] == pytest.approx(0.05)
    # differences 0.1, 0, 0.1, 0: sample deviation 0.057735, over sqrt(4)
    assert got["standard error"] == pytest.approx(0.0288675, rel=1e-5)
    assert got["users"] == 4


def test_paired_gain_ignores_what_both_rankings_share() -> None:
    # users far apart in level but gaining alike: the paired error is 0, not their spread
    old = np.array([0.0, 0.5, 1.0])
    got = paired_gain(old + 0.2, old)
    assert got["gain"] == pytest.approx(0.2)
    assert got["standard error"] == pytest.approx(0.0, abs=1e-12)
