"""One round of active inheritance, top to bottom: sources -> candidates -> scores -> selection -> records.

`run_round` is what a process does with its share of a round's prompts. It needs no Trainer: the trainer decides
when a round runs, gathers the records of every process, writes them, and trains on the winners (`winner_rows`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from .data import PromptData, as_completion, reference_text
from .records import Candidate, RoundRecord
from .rewards.base import call_reward
from .selection import Selection, combine, select
from .sources import CandidateSource

logger = logging.get_logger(__name__)


@dataclass
class RoundResult:
    records: list[RoundRecord]  # one per prompt, in input order
    generation_s: float = 0.0
    generated_tokens: int = 0
    scoring_s: float = 0.0


@contextmanager
def seeded(seed: int | None, devices: Sequence[torch.device] = ()):
    """Sample under `seed` without disturbing the caller's random state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(seed)
        yield


def run_round(round_id: int, epoch: int, global_step: int, prompt_idx: list[int], data: PromptData,
              sources: Sequence[CandidateSource], rewards: Sequence[Callable], selection: Selection,
              trainer_state: Any = None, seed: int | None = None, devices: Sequence[torch.device] = (),
              pad_to: int | None = None) -> RoundResult:
    """Propose, score and select for `prompt_idx`.

    `pad_to` makes the sources work on that many prompts (repeating the first), so that every process runs the
    same number of `generate` calls, which sharded models (ZeRO-3, FSDP) need; padding rows are dropped.
    """
    # 1. sources -> candidates
    padded = prompt_idx + [prompt_idx[0]] * max(0, (pad_to or 0) - len(prompt_idx))
    prompts = [data.prompts[i] for i in padded]
    candidates: list[list[Candidate]] = [[] for _ in padded]
    failures: list[list[dict[str, str]]] = [[] for _ in padded]
    generation_s, generated_tokens = 0.0, 0
    with seeded(seed, devices):
        for source in sources:
            start = time.perf_counter()
            for row, proposed in enumerate(source.candidates(round_id, padded, prompts)):
                candidates[row].extend(proposed)
                # a source that lost requests (an endpoint) says so; the round goes on without those candidates
                lost = getattr(source, "failures", {}).get(row, [])
                failures[row] += [{"source": source.name, "error": error} for error in lost]
                if source.generates:
                    generated_tokens += sum(c.num_tokens for c in proposed)
            if source.generates:
                generation_s += time.perf_counter() - start
    candidates = candidates[: len(prompt_idx)]

    # 2. candidates -> scores
    start = time.perf_counter()
    flat_idx = [i for i, cands in zip(prompt_idx, candidates) for _ in cands]
    flat = [c for cands in candidates for c in cands]
    scores = score_candidates(rewards, selection.reward_names, data, flat_idx, flat, trainer_state)

    # 3. scores -> selection -> records
    records, offset = [], 0
    for row, (i, cands) in enumerate(zip(prompt_idx, candidates)):
        block = scores[offset : offset + len(cands)]
        offset += len(cands)
        winners = choose(cands, block, selection)
        records.append(RoundRecord(round_id, epoch, global_step, i, data.prompts[i], cands, winners, failures[row]))
    return RoundResult(records, generation_s, generated_tokens, time.perf_counter() - start)


def score_candidates(rewards: Sequence[Callable], names: list[str], data: PromptData, prompt_idx: list[int],
                     candidates: list[Candidate], trainer_state: Any = None) -> np.ndarray:
    """One row per candidate, one column per reward; NaN where a reward returned None (GRPO's convention)."""
    scores = np.full((len(candidates), len(rewards)), np.nan)
    if not candidates:
        return scores
    prompts = [data.prompts[i] for i in prompt_idx]
    completions = [as_completion(c.text, data.conversational) for c in candidates]
    ids = [c.ids for c in candidates]
    columns = {name: [values[i] for i in prompt_idx] for name, values in data.columns.items()}
    for j, (func, name) in enumerate(zip(rewards, names)):
        values = call_reward(func, name, len(candidates), prompts=prompts, completions=completions,
                             completion_ids=ids, trainer_state=trainer_state, **columns)
        scores[:, j] = [np.nan if v is None else v for v in values]
    return scores


def choose(cands: list[Candidate], scores: np.ndarray, selection: Selection) -> list[int]:
    """Fill in each candidate's scores, combined score and feasibility; return the winners' indices."""
    combined = combine(scores, selection.weights, selection.normalization)
    feasible = np.ones(len(cands), dtype=bool)
    for j, threshold in selection.constraints.items():
        feasible &= np.nan_to_num(scores[:, j], nan=-np.inf) >= threshold
    for c, row, s, f in zip(cands, scores, combined, feasible):
        c.scores = {n: (None if np.isnan(v) else float(v)) for n, v in zip(selection.reward_names, row)}
        c.combined = None if np.isnan(s) else float(s)
        c.feasible = bool(f)
    eligible = np.array([c.finished for c in cands], dtype=bool) if selection.finished_only else None
    return select(combined, feasible, selection.top_n, selection.min_score, eligible)


def winner_rows(records: Sequence[RoundRecord], prompt_idx: set[int], data: PromptData) -> list[dict]:
    """SFT rows (prompt, completion, and the prompt's chat-template columns) for the winners of the given prompts,
    tagged with their prompt index."""
    return [
        {"prompt": rec.prompt, "completion": as_completion(c.text, data.conversational),
         **data.template_columns(rec.prompt_idx), "_ai_prompt_idx": rec.prompt_idx, "_ai_text": c.text,
         "_ai_truncated": not c.finished}
        for rec in records if rec.prompt_idx in prompt_idx for c in rec.winning()
    ]


def round_stats(round_id: int, records: Sequence[RoundRecord], reward_names: list[str],
                result: RoundResult | None = None) -> dict[str, float]:
    """The `ai/*` statistics of a whole round: per reward, candidates and winners means and the selection gain."""
    stats: dict[str, float] = {"ai/round": float(round_id)}
    every = [c for rec in records for c in rec.candidates]
    won = [c for rec in records for c in rec.winning()]
    for name in reward_names:
        all_scores = [c.scores[name] for c in every if c.scores.get(name) is not None]
        best = [c.scores[name] for c in won if c.scores.get(name) is not None]
        if all_scores:
            stats[f"ai/{name}/candidates_mean"] = float(np.mean(all_scores))
        if best:
            stats[f"ai/{name}/winners_mean"] = float(np.mean(best))
        if all_scores and best:
            stats[f"ai/{name}/selection_gain"] = float(np.mean(best) - np.mean(all_scores))
    stats.update(source_stats(records, reward_names))
    stats["ai/dropped_fraction"] = float(np.mean([rec.dropped for rec in records]))
    stats["ai/winner_tokens_mean"] = float(np.mean([c.num_tokens for c in won])) if won else 0.0
    stats["ai/truncated_winners_fraction"] = float(np.mean([not c.finished for c in won])) if won else 0.0
    stats["ai/candidates_per_prompt"] = len(every) / max(len(records), 1)
    if result is not None:
        stats["ai/generation_seconds"] = result.generation_s
        stats["ai/scoring_seconds"] = result.scoring_s
        if result.generation_s > 0:
            stats["ai/generation_tokens_per_second"] = result.generated_tokens / result.generation_s
    return stats


def source_stats(records: Sequence[RoundRecord], reward_names: list[str]) -> dict[str, float]:
    """With several sources: each source's share of the winners (`ai/wins/<source>`), and per reward how far the
    mixed pool's winners score above the best of the policy's own candidates (`ai/<reward>/gain_over_policy`), i.e.
    what the other sources add over best-of-k from the policy alone."""
    sources = sorted({c.source for rec in records for c in rec.candidates})
    if len(sources) < 2:
        return {}
    won = [c.source for rec in records for c in rec.winning()]
    stats = {f"ai/wins/{src}": won.count(src) / len(won) for src in sources} if won else {}
    if "policy" not in sources:
        return stats
    for name in reward_names:
        gains = []
        for rec in records:
            own = [c.scores[name] for c in rec.candidates if c.source == "policy" and c.scores.get(name) is not None]
            best = [c.scores[name] for c in rec.winning() if c.scores.get(name) is not None]
            if own and best:
                gains.append(float(np.mean(best)) - max(own))
        if gains:
            stats[f"ai/{name}/gain_over_policy"] = float(np.mean(gains))
    return stats


def preflight_rewards(rewards: Sequence[Callable], names: list[str], data: PromptData,
                      encode: Callable[[str], list[int]], trainer_state: Any = None) -> None:
    """Call every reward on a couple of known completions, so a broken reward fails before any generation."""
    n = min(2, len(data))
    texts = [reference_text(r) for r in data.references[:n]] if data.references is not None else [""] * n
    texts = [t or "A short test answer." for t in texts]
    cands = [Candidate(t, "preflight", 0, ids=encode(t)) for t in texts]
    try:
        score_candidates(rewards, names, data, list(range(n)), cands, trainer_state)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{err} (Found by a test call of the rewards on known text, before training.)") from err


def log_round(round_id: int, records: Sequence[RoundRecord], stats: dict[str, float], num_examples: int,
              main_process: bool) -> None:
    """The per-round summary line, a few winners, and a warning when every prompt was dropped."""
    if stats["ai/dropped_fraction"] == 1.0:
        logger.warning(f"Round {round_id}: every prompt was dropped (min_score / no scored candidate); "
                       "its steps make no update.")
    if not main_process:
        return
    summary = ", ".join(f"{k[3:]}={v:.4g}" for k, v in stats.items() if k != "ai/round")
    logger.info(f"Round {round_id}: {len(records)} prompts; {summary}")
    for rec in [r for r in records if not r.dropped][:num_examples]:
        best = rec.winning()[0]
        logger.info(f"  winner ({best.source}, score {best.combined:.4g}): {best.text[:200]!r}")
