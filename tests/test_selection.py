import numpy as np
import pytest

from ail_trainer.selection import combine, normalize, select

nan = np.nan


def test_winner_is_argmax_with_lowest_index_tie_break():
    combined = np.array([1.0, 3.0, 3.0, 2.0])
    assert select(combined, np.ones(4, bool)) == [1]
    assert select(combined, np.ones(4, bool), top_n=3) == [1, 2, 3]


def test_unscored_candidates_never_win():
    assert select(np.array([nan, 1.0, nan]), np.ones(3, bool), top_n=3) == [1]
    assert select(np.array([nan, nan]), np.ones(2, bool)) == []


def test_weights_combine():
    scores = np.array([[1.0, 10.0], [2.0, 0.0]])
    assert combine(scores, np.array([1.0, 0.5])).tolist() == [6.0, 2.0]
    assert combine(scores, np.array([1.0, 0.0])).tolist() == [1.0, 2.0]
    assert np.isnan(combine(np.array([[1.0, nan]]), np.array([1.0, 1.0]))[0])


def test_zscore_and_rank_normalization_balance_scales():
    scores = np.array([[100.0, 0.1], [200.0, 0.3], [300.0, 0.2]])
    z = normalize(scores, "zscore")
    assert z[:, 0] == pytest.approx([-1.2247449, 0.0, 1.2247449])
    assert z.mean(axis=0) == pytest.approx([0, 0])
    assert normalize(scores, "rank").tolist() == [[0.0, 0.0], [0.5, 1.0], [1.0, 0.5]]
    # unnormalized, the first reward's scale decides; normalized, both count
    w = np.array([1.0, 1.0])
    assert select(combine(scores, w), np.ones(3, bool)) == [2]
    assert select(combine(scores, w, "rank"), np.ones(3, bool), top_n=3) == [1, 2, 0]
    assert normalize(np.array([[5.0], [5.0]]), "zscore").tolist() == [[0.0], [0.0]]
    ties = normalize(np.array([[1.0], [1.0], [2.0]]), "rank")
    assert ties[:, 0].tolist() == [0.25, 0.25, 1.0]


def test_constraint_breakers_lose_to_any_keeper():
    combined = np.array([10.0, 1.0, 5.0])
    feasible = np.array([False, True, True])
    assert select(combined, feasible, top_n=3) == [2, 1, 0]
    assert select(combined, np.zeros(3, bool)) == [0]  # all break it: best of them


def test_min_score_drops():
    assert select(np.array([0.1, 0.4]), np.ones(2, bool), top_n=2, min_score=0.3) == [1]
    assert select(np.array([0.1, 0.2]), np.ones(2, bool), min_score=0.3) == []
