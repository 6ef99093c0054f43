"""The temperature-curve control: the base model sampled at several temperatures traces how much of a metric (MTLD)
it gains for how much fluency it loses (judge NLL). A trained model is placed against that curve at its own judge
NLL: the metric above what the temperature knob alone gives at the same fluency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CurvePoint:
    """Per-prompt values of the metric and of the judge's NLL at one temperature (or for one model)."""

    label: str
    metric: np.ndarray
    nll: np.ndarray


@dataclass(frozen=True)
class MatchedExcess:
    """The model's metric against the curve's at the model's judge NLL: absolute and in %, with 95% intervals over
    prompts; `inside` False when that NLL lies outside the curve's range (the curve's end is then extended)."""

    curve_metric: float
    model_metric: float
    model_nll: float
    excess: float
    excess_ci95: tuple[float, float]
    excess_pct: float
    excess_pct_ci95: tuple[float, float]
    inside: bool


def _at(curve_metric: np.ndarray, curve_nll: np.ndarray, nll: float) -> float:
    """The curve's metric at `nll`: linear between the two nearest points, extended linearly past its ends."""
    order = np.argsort(curve_nll)
    x, y = curve_nll[order], curve_metric[order]
    if len(x) == 1:
        return float(y[0])
    j = int(np.clip(np.searchsorted(x, nll), 1, len(x) - 1))
    x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
    return float(y0 if x1 == x0 else y0 + (y1 - y0) * (nll - x0) / (x1 - x0))


def matched_excess(curve: list[CurvePoint], model: CurvePoint, n_resamples: int = 2000,
                   seed: int = 0) -> MatchedExcess:
    """How far `model`'s mean metric lies above the base model's temperature curve at `model`'s mean judge NLL.
    Every point holds the same prompts in the same order; the interval resamples prompts (the curve and the model
    together) and takes the 2.5 and 97.5 percentiles."""
    if not curve:
        raise ValueError("The temperature curve needs at least one point.")
    n = len(model.metric)
    if any(len(p.metric) != n or len(p.nll) != n for p in curve) or len(model.nll) != n:
        raise ValueError("Every curve point and the model must hold the same prompts (one value per prompt).")
    keep = np.isfinite(model.metric) & np.isfinite(model.nll)
    for p in curve:
        keep &= np.isfinite(p.metric) & np.isfinite(p.nll)
    metric = np.stack([p.metric[keep] for p in curve])
    nll = np.stack([p.nll[keep] for p in curve])
    m_metric, m_nll = model.metric[keep], model.nll[keep]

    def stats(idx: np.ndarray) -> tuple[float, float]:
        at = _at(metric[:, idx].mean(1), nll[:, idx].mean(1), float(m_nll[idx].mean()))
        return float(m_metric[idx].mean()) - at, (float(m_metric[idx].mean()) / at - 1) * 100

    everything = np.arange(int(keep.sum()))
    excess, pct = stats(everything)
    rng = np.random.default_rng(seed)
    draws = np.array([stats(rng.integers(0, len(everything), len(everything))) for _ in range(n_resamples)])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    curve_nll = nll.mean(1)
    model_nll = float(m_nll.mean())
    return MatchedExcess(curve_metric=float(m_metric.mean()) - excess, model_metric=float(m_metric.mean()),
                         model_nll=model_nll, excess=excess, excess_ci95=(float(low[0]), float(high[0])),
                         excess_pct=pct, excess_pct_ci95=(float(low[1]), float(high[1])),
                         inside=bool(curve_nll.min() <= model_nll <= curve_nll.max()))
