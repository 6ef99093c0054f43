"""Combine reward scores per prompt and pick the winners."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Selection:
    """How candidates are combined and winners picked: the config's scoring and selection fields, validated."""

    reward_names: list[str]
    weights: np.ndarray
    normalization: str = "none"
    constraints: dict[int, float] = field(default_factory=dict)  # reward index -> minimum raw value
    top_n: int = 1
    min_score: float | None = None
    finished_only: bool = False  # candidates cut at max_completion_length cannot win

    @classmethod
    def from_config(cls, names: list[str], args: Any) -> Selection:
        """`names` are the rewards' names (repeated names get a suffix: `mtld`, `mtld_2`)."""
        seen: dict[str, int] = defaultdict(int)
        unique = []
        for name in names:
            seen[name] += 1
            unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
        if args.reward_weights is None:
            weights = np.ones(len(unique))
        elif len(args.reward_weights) != len(unique):
            raise ValueError(
                f"reward_weights has {len(args.reward_weights)} values but there are {len(unique)} rewards "
                f"({unique}); give one weight per reward."
            )
        else:
            weights = np.asarray(args.reward_weights, dtype=float)
        unknown = set(args.reward_constraints or {}) - set(unique)
        if unknown:
            raise ValueError(
                f"reward_constraints names {sorted(unknown)}, which are not among the rewards {unique}. "
                "Add the reward to reward_funcs (with weight 0 to use it only as a constraint)."
            )
        constraints = {unique.index(k): float(v) for k, v in (args.reward_constraints or {}).items()}
        return cls(unique, weights, args.reward_normalization, constraints, args.top_n, args.min_score,
                   finished_only=getattr(args, "truncated_winners", "no_eos") == "drop")


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


def select(combined: np.ndarray, feasible: np.ndarray, top_n: int = 1, min_score: float | None = None,
           eligible: np.ndarray | None = None) -> list[int]:
    """Indices of the winners: feasible candidates first, then highest combined score, then lowest index.

    Unscored candidates (NaN) and candidates not `eligible` never win; winners below `min_score` are dropped.
    """
    candidates = [i for i in range(len(combined))
                  if not np.isnan(combined[i]) and (eligible is None or eligible[i])]
    candidates.sort(key=lambda i: (not feasible[i], -combined[i], i))
    winners = candidates[:top_n]
    if min_score is not None:
        winners = [i for i in winners if combined[i] >= min_score]
    return winners
