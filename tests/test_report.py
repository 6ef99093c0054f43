"""The held-out report's % changes and their paired bootstrap intervals over prompts."""

import math

import numpy as np
import pytest

from ail_trainer.report import percent_change, pooled_change


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


def test_pooling_runs_averages_each_prompts_after_values_and_narrows_the_interval():

    rng = np.random.default_rng(0)
    before = rng.uniform(40, 60, 80)
    runs = [{"per_prompt": {"before": {"m": before.tolist()},
                            "after": {"m": (before * 1.05 + rng.normal(0, 6, 80)).tolist()}}} for _ in range(4)]
    alone = percent_change(before, np.array(runs[0]["per_prompt"]["after"]["m"]))
    pooled = pooled_change(runs, "m")
    mean_after = np.mean([r["per_prompt"]["after"]["m"] for r in runs], axis=0)
    assert pooled[0] == percent_change(before, mean_after)[0]
    assert pooled[2] - pooled[1] < alone[2] - alone[1] and pooled[1] > 0
    other = {"per_prompt": {"before": {"m": (before + 1).tolist()}, "after": {"m": before.tolist()}}}

    with pytest.raises(ValueError, match="not judged on the same held-out samples"):
        pooled_change([runs[0], other], "m")
    with pytest.raises(ValueError, match="per-prompt values"):
        pooled_change([{"before": {}}], "m")


def test_held_out_batches_hold_as_many_samples_as_a_candidate_batch():
    from types import SimpleNamespace

    from ail_trainer.report import held_out_batch_size

    args = SimpleNamespace(generation_batch_size=16, num_candidates=8)
    assert held_out_batch_size(args, 2) == 64  # 128 samples a batch, as 16 prompts × 8 candidates
    assert held_out_batch_size(args, 25) == 5
    assert held_out_batch_size(args, 200) == 1  # never an empty batch
