"""The held-out report's % changes and their paired bootstrap intervals over prompts."""

import math

import numpy as np

from ail_trainer.report import percent_change


def test_a_uniform_doubling_is_plus_100_percent_with_no_spread():
    before = np.array([1.0, 2.0, 3.0, 4.0])
    change, low, high = percent_change(before, 2 * before)
    assert change == low == high == 100.0


def test_the_interval_holds_the_change_and_widens_with_noise():
    rng = np.random.default_rng(0)
    before = rng.uniform(40, 60, 80)
    quiet = percent_change(before, before * 1.1 + rng.normal(0, 1, 80))
    noisy = percent_change(before, before * 1.1 + rng.normal(0, 10, 80))
    for change, low, high in (quiet, noisy):
        assert low < change < high and low > 0  # +10% is found, and the interval excludes 0
    assert noisy[2] - noisy[1] > quiet[2] - quiet[1]


def test_a_zero_base_has_no_percent_change():
    assert all(math.isnan(v) for v in percent_change(np.zeros(5), np.ones(5)))
