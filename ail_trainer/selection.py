"""Combine reward scores per prompt and pick the winners."""

from __future__ import annotations

import numpy as np


def normalize(scores: np.ndarray, method: str) -> np.ndarray:
    """Normalize each reward (column) across one prompt's candidates (rows); NaN marks a missing score."""
    if method == "none":
        return scores
    out = np.full_like(scores, np.nan)
    for j in range(scores.shape[1]):
        col = scores[:, j]
        valid = ~np.isnan(col)
        if not valid.any():
            continue
        v = col[valid]
        if method == "zscore":
            std = v.std()
            out[valid, j] = (v - v.mean()) / std if std > 0 else 0.0
        elif method == "rank":  # average rank in [0, 1]; ties share their mean rank
            ranks = np.empty(len(v))
            order = np.argsort(v, kind="stable")
            ranks[order] = np.arange(len(v))
            for value in np.unique(v):
                tie = v == value
                ranks[tie] = ranks[tie].mean()
            out[valid, j] = ranks / max(len(v) - 1, 1)
        else:
            raise ValueError(f"Unknown normalization {method!r}.")
    return out


def combine(scores: np.ndarray, weights: np.ndarray, method: str = "none") -> np.ndarray:
    """Weighted sum of (normalized) rewards per candidate; NaN when any reward left the candidate unscored."""
    return normalize(scores, method) @ weights


def select(combined: np.ndarray, feasible: np.ndarray, top_n: int = 1, min_score: float | None = None) -> list[int]:
    """Indices of the winners: feasible candidates first, then highest combined score, then lowest index.

    Unscored candidates (NaN) never win; winners below `min_score` are dropped.
    """
    candidates = [i for i in range(len(combined)) if not np.isnan(combined[i])]
    candidates.sort(key=lambda i: (not feasible[i], -combined[i], i))
    winners = candidates[:top_n]
    if min_score is not None:
        winners = [i for i in winners if combined[i] >= min_score]
    return winners
