"""Before/after measurement on held-out prompts, and the model card of a run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .compat import unset_hf_deepspeed_config
from .data import as_completion, load_prompt_data
from .generation import SamplingSettings, build_generation_config, generate, render_prompts, truncate_prompts
from .rewards import Reward
from .rewards.base import call_reward


def held_out_batch_size(args: Any, samples: int) -> int:
    """Held-out prompts sampled together: as many samples as a candidate batch holds (`generation_batch_size` ×
    `num_candidates`), so a report with few samples per prompt still decodes full batches."""
    return max(1, args.generation_batch_size * args.num_candidates // max(1, samples))


def sample_and_score(model_path: str, dataset: Any, trainer: Any, max_prompts: int, samples: int,
                     seed: int = 1234, top_p: float | None = None, coupled: bool = False,
                     autocast: bool = False, judges: dict[str, Callable] | None = None,
                     ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Sample held-out completions (the run's sampling settings, with `top_p` if given) from a saved model and score
    every reward. With `coupled`, each (prompt, sample) draws from its own random stream seeded by `seed`
    (`generation.generate(noise_seed=)`), so two models sampled with the same seed share their random numbers.

    Prompts are batched by `held_out_batch_size` and sampled in float32, or with `autocast` under the run's mixed
    precision (`bf16`: autocast, as its candidates were sampled).
    `judges` (name -> `(prompts, texts) -> values`, e.g. `evaluation.build_judges`) score the answers beside the
    rewards. Returns each metric per prompt (the mean over its samples; `capped`: the share cut at
    `max_completion_length`) and the first sample of each prompt."""
    unset_hf_deepspeed_config()  # a plain, unsharded copy for measuring
    args = trainer.args
    data = load_prompt_data(dataset.select(range(min(max_prompts, len(dataset)))))
    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.to(trainer.accelerator.device)
    settings = SamplingSettings.from_config(args)  # the run's own settings
    if top_p is not None:
        settings = dataclasses.replace(settings, top_p=top_p)
    config = build_generation_config(settings, model, tok)
    ids = truncate_prompts(render_prompts(data.prompts, tok, data.conversational), args.max_prompt_length, "eval")
    torch.manual_seed(seed)
    with trainer.accelerator.autocast() if autocast else contextlib.nullcontext():
        out = generate(model, tok, ids, samples, config, held_out_batch_size(args, samples),
                       desc="Held-out sampling", noise_seed=seed if coupled else None)
    prompts = [p for p, s in zip(data.prompts, out) for _ in s]
    texts = [g.text for s in out for g in s]
    completions = [as_completion(t, data.conversational) for t in texts]
    per_prompt = lambda values: np.array([np.nanmean(values[i * samples:(i + 1) * samples]) for i in range(len(out))])
    result = {"tokens": per_prompt([len(g.ids) for s in out for g in s]),
              "capped": per_prompt([float(not g.finished) for s in out for g in s])}
    columns = {k: [v[i] for i, s in enumerate(out) for _ in s] for k, v in data.columns.items()}
    for name, func in zip(trainer.reward_names, trainer.reward_funcs):
        values = call_reward(func, name, len(texts), prompts=prompts, completions=completions,
                             completion_ids=[g.ids for s in out for g in s], **columns)
        result[name] = per_prompt([np.nan if v is None else v for v in values])
    for name, judge in (judges or {}).items():
        result[name] = per_prompt([np.nan if v is None else v for v in judge(prompts, texts)])
    return result, [s[0].text for s in out]


def percent_change(before: np.ndarray, after: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """% change of the mean from `before` to `after` (paired, one value per prompt) and its 95% paired bootstrap
    interval over prompts (scipy, percentile method); NaN where the base mean is 0 or there is one prompt."""
    from scipy.stats import bootstrap

    ratio = lambda b, a, axis=-1: (np.mean(a, axis=axis) / np.mean(b, axis=axis) - 1) * 100
    if not np.mean(before) or len(before) < 2:
        return float("nan"), float("nan"), float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = bootstrap((before, after), ratio, paired=True, vectorized=True, n_resamples=2000,
                       method="percentile", random_state=seed).confidence_interval
    return float(ratio(before, after)), float(ci.low), float(ci.high)


def before_after(base: str, trained: str, dataset: Any, trainer: Any, max_prompts: int, samples: int,
                 num_examples: int = 2, example_chars: int = 300, top_p: float | None = None,
                 coupled: bool = False, autocast: bool = False, judges: dict[str, Callable] | None = None) -> dict:
    """Held-out metrics of the base and the trained model, same prompts, seed and sampling (the run's, with `top_p` if
    given; with `coupled`, the same random numbers per sample; float32, or with `autocast` the run's mixed
    precision), a few answers side by side, and each metric's per-prompt values (`per_prompt`), so runs judged on the
    same held-out samples can be pooled. `judges` score both models' answers beside the rewards."""
    kwargs = {"top_p": top_p, "coupled": coupled, "autocast": autocast, "judges": judges}
    before_rows, before_texts = sample_and_score(base, dataset, trainer, max_prompts, samples, **kwargs)
    after_rows, after_texts = sample_and_score(trained, dataset, trainer, max_prompts, samples, **kwargs)
    rows = [f"{'metric (held-out samples)':<28}{'before':>12}{'after':>12}{'change':>10}   95% interval"]
    before, after, changes = {}, {}, {}
    for key in before_rows:
        keep = ~(np.isnan(before_rows[key]) | np.isnan(after_rows[key]))  # prompts this metric scored in both
        b, a = before_rows[key][keep], after_rows[key][keep]
        before[key], after[key] = float(np.mean(b)), float(np.mean(a))
        change, low, high = percent_change(b, a)
        changes[key] = {"change_pct": change, "ci95_pct": [low, high]}
        rows.append(f"{key:<28}{before[key]:>12.4g}{after[key]:>12.4g}{change:>+9.1f}%   [{low:+.1f}%, {high:+.1f}%]")
    n = min(max_prompts, len(dataset))
    own = top_p is None or top_p == trainer.args.top_p
    top_p = trainer.args.top_p if top_p is None else top_p
    precision = trainer.accelerator.mixed_precision if autocast else "no"
    table = (f"Held-out prompts: {n}, {samples} samples each{'' if own else f' (top_p {top_p:g})'}"
             f"{', common random numbers' if coupled else ''}{'' if precision == 'no' else f', {precision} autocast'}"
             "; interval: paired bootstrap over prompts\n"
             + "\n".join(rows))
    prompts = load_prompt_data(dataset.select(range(min(num_examples, n)))).prompts
    examples = [{"prompt": p if isinstance(p, str) else p[-1]["content"], "before": b, "after": a}
                for p, b, a in zip(prompts, before_texts, after_texts)]
    clip = lambda text: " ".join(text.split())[:example_chars] + ("…" if len(text) > example_chars else "")
    for ex in examples:
        table += f"\n\nPrompt: {ex['prompt']}\n  before: {clip(ex['before'])}\n  after:  {clip(ex['after'])}"
    return {"before": before, "after": after, "change": changes, "held_out_prompts": n, "samples_per_prompt": samples,
            "top_p": top_p, "coupled": coupled, "mixed_precision": precision, "examples": examples, "table": table,
            "per_prompt": {"before": {k: v.tolist() for k, v in before_rows.items()},
                           "after": {k: v.tolist() for k, v in after_rows.items()}}}


def write_card(trainer: Any, output_dir: str, base_model: str, report: dict | None) -> None:
    """`active_inheritance.json` and a README model card: objective, rewards, k and the selection gain."""
    args = trainer.args
    summary = {
        "base_model": base_model,
        "rewards": [repr(f) if isinstance(f, Reward) else n
                    for f, n in zip(trainer.reward_funcs, trainer.reward_names)],
        "reward_names": trainer.reward_names,
        "reward_weights": trainer.reward_weights.tolist(),
        "reward_normalization": args.reward_normalization,
        "reward_constraints": args.reward_constraints,
        "num_candidates": args.num_candidates,
        "candidate_generation": args.candidate_generation,
        "teachers": [t.name for t in trainer.teachers],
        "teacher_mode": args.teacher_mode,
        "top_n": args.top_n,
        "mixed_precision": trainer.accelerator.mixed_precision,  # training and candidate sampling
        "rounds": trainer.round_stats,
        "held_out": {k: v for k, v in (report or {}).items() if k != "table"},
    }
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    (Path(output_dir) / "active_inheritance.json").write_text(json.dumps(summary, indent=2, default=str))
    lines = [
        "---", "library_name: transformers", "tags: [trl, sft, active-inheritance, ail-trainer]", "---", "",
        f"# {Path(output_dir).name}", "",
        f"Fine-tuned from `{base_model}` with active inheritance: "
        + ("each round sampled " if args.candidate_generation == "online" else
           "one round before training (offline: its winners trained every epoch) sampled ")
        + f"{args.num_candidates} candidates per prompt"
        + (f" (plus {len(trainer.teachers)} teacher(s))" if trainer.teachers else "")
        + f", scored them, and trained on the best {args.top_n}.", "",
        "**Objective** (maximized): " + " + ".join(
            f"{w:g} x `{n}`" for n, w in zip(trainer.reward_names, trainer.reward_weights)),
        "", "| round | reward | candidates mean | winners mean | selection gain |", "|---|---|---|---|---|",
    ]
    for stats in trainer.round_stats:
        for name in trainer.reward_names:
            if f"ai/{name}/selection_gain" in stats:
                lines.append(f"| {int(stats['ai/round'])} | {name} | {stats[f'ai/{name}/candidates_mean']:.4g} | "
                             f"{stats[f'ai/{name}/winners_mean']:.4g} | {stats[f'ai/{name}/selection_gain']:+.4g} |")
    wins = sorted({k for stats in trainer.round_stats for k in stats if k.startswith("ai/wins/")})
    if wins:
        lines += ["", "**Winners by source** (share of each round's winners):", "",
                  "| round | " + " | ".join(f"`{k[len('ai/wins/'):]}`" for k in wins) + " |",
                  "|---|" + "---|" * len(wins)]
        lines += [f"| {int(stats['ai/round'])} | " + " | ".join(f"{stats.get(k, 0.0):.0%}" for k in wins) + " |"
                  for stats in trainer.round_stats]
    if report:
        lines += ["", "## Held-out samples before and after", "", "```", report["table"], "```"]
    lines += ["", "Candidate records of every round: `rounds/round-*.jsonl`.", ""]
    (Path(output_dir) / "README.md").write_text("\n".join(lines))


def pooled_change(reports: list[dict], key: str) -> tuple[float, float, float]:
    """`percent_change` of metric `key` over runs judged on the same held-out samples of the base model (the same
    prompts, seed and sampling: equal `per_prompt["before"]`): each prompt's after value is its mean over the runs.
    The interval is then over prompts for the mean trained model of those runs (their seeds, not one seed's)."""
    if not reports or any("per_prompt" not in r for r in reports):
        raise ValueError("Pooling needs every report's per-prompt values (`per_prompt`, recorded since eval_coupled "
                         "was added); rerun the runs without them.")
    before = np.array(reports[0]["per_prompt"]["before"][key], dtype=float)
    if any(not np.array_equal(np.array(r["per_prompt"]["before"][key], dtype=float), before, equal_nan=True)
           for r in reports[1:]):
        raise ValueError(f"The runs' base-model {key!r} values differ, so they were not judged on the same held-out "
                         "samples (prompts, seed, samples per prompt, top_p, eval_coupled); pool only runs that were.")
    after = np.nanmean([np.array(r["per_prompt"]["after"][key], dtype=float) for r in reports], axis=0)
    keep = ~(np.isnan(before) | np.isnan(after))
    return percent_change(before[keep], after[keep])
