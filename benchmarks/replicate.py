"""Replicate the paper's passive and active inheritance on a real instruct model, offline.

    python benchmarks/replicate.py            # SmolLM2-135M-Instruct, 3 seeds (about 2 h on 2 CPU cores)
    python benchmarks/replicate.py --smoke    # the toy model, a few prompts, one seed (CI)

Conditions, on the same training prompts, budget and seeds:
- base: no training;
- passive: k=1, SFT on the model's own single sample (no selection);
- active: best-of-k for length up, length down, MTLD up, low toxicity (profanity backend), k=4; and MTLD up at k=8.

Every condition is measured on every attribute, on held-out prompts, sampled with top_p 0.9 and temperature 1.0 as
in the paper: length (tokens), MTLD, Gunning fog and the share of answers cut at the cap on held-out instructions
(sampled with twice the training cap); toxicity (profanity probability) on held-out sentence starters. Each
condition and seed writes `runs/<name>.json` as soon as it finishes, so an interrupted run resumes where it stopped.
The summary is `replicate.json`, `replicate.md` and `replicate.png`.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, machine, quiet

# The paper's headline magnitudes (best reported active-inheritance changes), shown next to ours.
PAPER = {"tokens": "+116%", "mtld": "+43%", "toxicity": "-40%"}
ATTRIBUTES = ("tokens", "mtld", "fog", "capped", "toxicity")
# top_p 0.9 and temperature 1.0 as the paper; transformers' default top-k (50), which `generate` adds to those two
# unless told otherwise, stays on, as it was for every run in the table.
TOP_K = 50


@dataclass
class Condition:
    name: str
    k: int
    rewards: list = field(default_factory=list)
    target: str | None = None  # the attribute the condition steers, and its direction
    direction: int = 0


CONDITIONS = [
    Condition("base", 0),
    Condition("passive", 1, ["mtld"]),
    Condition("length_up", 4, ["length"], "tokens", +1),
    Condition("length_down", 4, [{"name": "length", "maximize": False}], "tokens", -1),
    Condition("mtld_up", 4, ["mtld"], "mtld", +1),
    Condition("mtld_up_k8", 8, ["mtld"], "mtld", +1),
    Condition("low_toxicity", 4, [{"name": "low_toxicity", "backend": "profanity"}], "toxicity", -1),
]


@dataclass
class Sizes:
    model: str = "builtin:smollm2-135m-instruct"
    train_instructions: int = 16
    train_starters: int = 8
    eval_instructions: int = 20
    eval_starters: int = 16
    max_completion_length: int = 128
    # held-out answers get twice the training cap, so a longer answer can show as longer instead of as capped
    eval_max_completion_length: int = 256
    eval_starter_length: int = 96
    epochs: int = 2
    batch_size: int = 4
    learning_rate: float = 1e-5
    generation_batch_size: int = 24
    truncated_winners: str = "no_eos"
    seeds: tuple = (0, 1, 2)


# Ablations: one change each against the defaults above, to measure a cause of the gap to the paper. Their runs go to
# `replicate-<variant>/` and are compared with the main run's base and passive (same seeds, same held-out samples).
VARIANTS = {
    "drop": {"truncated_winners": "drop"},  # a candidate cut at the cap cannot win: every winner ends at EOS
    "epochs4": {"epochs": 4},  # twice the rounds and optimizer steps
}

SMOKE = Sizes(model="builtin:tiny-chat", train_instructions=4, train_starters=2, eval_instructions=4,
              eval_starters=2, max_completion_length=12, eval_max_completion_length=16, eval_starter_length=12,
              epochs=1, batch_size=2, seeds=(0,))


def prompt_sets(sizes: Sizes) -> dict[str, list[list[dict]]]:
    """Train and held-out prompts: instructions split by topic, sentence starters split by position."""
    from ail_trainer.profiling.data import load_rows
    from ail_trainer.prompts import as_chat, load_instructions

    rng = np.random.default_rng(0)  # the same prompts for every condition and seed
    train = load_instructions("train")
    train = [train[i] for i in rng.permutation(len(train))[: sizes.train_instructions]]
    test = load_instructions("test")[: sizes.eval_instructions]
    starters = [r["prompt"] for r in load_rows("builtin:toxicity", "toxicity")]
    held = starters[3::4][: sizes.eval_starters]
    kept = [s for i, s in enumerate(starters) if i % 4 != 3]
    kept = [kept[i] for i in rng.permutation(len(kept))[: sizes.train_starters]]
    starter = lambda s: as_chat(f"Continue this sentence: {s}")
    return {"train": [as_chat(r["prompt"]) for r in train] + [starter(s) for s in kept],
            "eval_instructions": [as_chat(r["prompt"]) for r in test], "eval_starters": [starter(s) for s in held]}


def sample(model, tok, prompts: list, sizes: Sizes, seed: int, max_new_tokens: int) -> list:
    from ail_trainer.generation import SamplingSettings, build_generation_config, generate, render_prompts

    settings = SamplingSettings(max_new_tokens=max_new_tokens, temperature=1.0, top_p=0.9, top_k=TOP_K)
    config = build_generation_config(settings, model, tok)
    torch.manual_seed(seed)
    out = generate(model, tok, render_prompts(prompts, tok, True), 1, config, sizes.generation_batch_size,
                   show_progress=False)
    return [s[0] for s in out]


def measure(model, tok, sets: dict, sizes: Sizes, seed: int) -> dict:
    """Every attribute on held-out samples (the same sampling seed for every condition of a seed)."""
    from ail_trainer.profiling.metrics import gunning_fog
    from ail_trainer.rewards import MTLD
    from ail_trainer.rewards.toxicity import profanity_probabilities

    answers = sample(model, tok, sets["eval_instructions"], sizes, 1000 + seed, sizes.eval_max_completion_length)
    continuations = sample(model, tok, sets["eval_starters"], sizes, 2000 + seed, sizes.eval_starter_length)
    texts = [g.text for g in answers]
    return {
        "tokens": float(np.mean([len(g.ids) for g in answers])),
        "mtld": float(np.mean(MTLD()(completions=texts))),
        "fog": float(np.mean([gunning_fog(t) for t in texts])),
        "capped": float(np.mean([not g.finished for g in answers])),
        "toxicity": float(np.mean(profanity_probabilities([g.text for g in continuations]))),
        "examples": [{"prompt": p[-1]["content"], "answer": t} for p, t in zip(sets["eval_instructions"][:2], texts)],
    }


def train(cond: Condition, sets: dict, sizes: Sizes, seed: int, work: Path):
    from datasets import Dataset

    from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer

    args = ActiveInheritanceConfig(
        output_dir=str(work), num_candidates=cond.k, max_completion_length=sizes.max_completion_length,
        temperature=1.0, top_p=0.9, top_k=TOP_K, generation_batch_size=sizes.generation_batch_size,
        generation_steps=None,
        num_train_epochs=sizes.epochs, per_device_train_batch_size=sizes.batch_size,
        learning_rate=sizes.learning_rate, lr_scheduler_type="constant", truncated_winners=sizes.truncated_winners,
        seed=seed, bf16=False, use_cpu=True,
        save_strategy="no", report_to="none", logging_steps=1000, disable_tqdm=True, num_completions_to_print=0,
    )
    trainer = ActiveInheritanceTrainer(model_path(sizes), reward_funcs=cond.rewards, args=args,
                                       train_dataset=Dataset.from_dict({"prompt": sets["train"]}))
    trainer.train()
    return trainer


def model_path(sizes: Sizes) -> str:
    from ail_trainer.builtin import builtin_model_path

    return builtin_model_path(sizes.model)


def run_one(cond: Condition, seed: int, sets: dict, sizes: Sizes, out: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = out / "work" / f"{cond.name}-seed{seed}"
    tok = AutoTokenizer.from_pretrained(model_path(sizes))
    start = time.perf_counter()
    stats: list = []
    if cond.k == 0:
        model = AutoModelForCausalLM.from_pretrained(model_path(sizes), dtype=torch.float32)
    else:
        trainer = train(cond, sets, sizes, seed, work)
        model, stats = trainer.model, trainer.round_stats
    trained = time.perf_counter() - start
    result = measure(model, tok, sets, sizes, seed)
    result.update(condition=cond.name, seed=seed, k=cond.k, train_seconds=trained,
                  eval_seconds=time.perf_counter() - start - trained, rounds=stats)
    shutil.rmtree(work, ignore_errors=True)
    del model
    gc.collect()
    return result


def pct(new: float, old: float) -> float:
    return (new - old) / abs(old) * 100 if old else float("nan")


def summarize(runs: list[dict], sizes: Sizes, reference: dict | None = None) -> dict:
    """Mean and sd over seeds; % change of the means against base and against passive.

    `reference` (an ablation's main summary) supplies base and passive rows where `runs` has none of their own."""
    table: dict[str, dict] = {}
    for ref in ("base", "passive"):
        if reference and ref in reference["conditions"] and not any(r["condition"] == ref for r in runs):
            table[f"{ref}"] = {**reference["conditions"][ref], "from_main_run": True}
    for cond in CONDITIONS:
        rows = [r for r in runs if r["condition"] == cond.name]
        if rows:
            table[cond.name] = {a: {"mean": float(np.mean([r[a] for r in rows])),
                                    "sd": float(np.std([r[a] for r in rows], ddof=1)) if len(rows) > 1 else 0.0}
                                for a in ATTRIBUTES}
            table[cond.name]["seeds"] = len(rows)
            rounds = [st for r in rows for st in r["rounds"]]
            gains = [v for st in rounds for k, v in st.items() if k.endswith("/selection_gain")]
            means = [v for st in rounds for k, v in st.items() if k.endswith("/candidates_mean")]
            if rounds:  # what selection did during training: winners' gain over all candidates, cut-off winners
                table[cond.name]["training"] = {
                    "selection_gain": float(np.mean(gains)), "candidates_mean": float(np.mean(means)),
                    "truncated_winners": float(np.mean([st["ai/truncated_winners_fraction"] for st in rounds])),
                    "winner_tokens": float(np.mean([st["ai/winner_tokens_mean"] for st in rounds]))}
    for row in table.values():
        for ref in ("base", "passive"):
            if ref in table:
                row[f"vs_{ref}"] = {a: pct(row[a]["mean"], table[ref][a]["mean"]) for a in ATTRIBUTES}
    return {"machine": machine(), "sizes": asdict(sizes), "paper": PAPER, "conditions": table,
            "targets": {c.name: [c.target, c.direction] for c in CONDITIONS if c.target}}


def markdown(summary: dict) -> str:
    labels = {"tokens": "length (tokens)", "mtld": "MTLD", "fog": "Gunning fog", "capped": "capped share",
              "toxicity": "toxicity"}
    lines = ["| condition | " + " | ".join(labels[a] for a in ATTRIBUTES) + " |",
             "|---" * (len(ATTRIBUTES) + 1) + "|"]
    targets = summary["targets"]
    for name, row in summary["conditions"].items():
        cells = []
        for a in ATTRIBUTES:
            cell = f"{row[a]['mean']:.3g} ± {row[a]['sd']:.2g}"
            if name != "base" and "vs_base" in row:
                cell += f" ({row['vs_base'][a]:+.0f}%"
                cell += f", {row['vs_passive'][a]:+.0f}% vs passive)" if name != "passive" and "vs_passive" in row \
                    else ")"
            if targets.get(name, [None])[0] == a:
                cell = f"**{cell}**"
            cells.append(cell)
        source = ", main run" if row.get("from_main_run") else ""
        lines.append(f"| {name} (n={row['seeds']}{source}) | " + " | ".join(cells) + " |")
    lines += ["", "| condition | reward's selection gain (winners − candidates, per round) | candidates' mean | "
              "winner tokens | cut-off winners |", "|---|---|---|---|---|"]
    for name, row in summary["conditions"].items():
        if "training" in row:
            t = row["training"]
            lines.append(f"| {name} | {t['selection_gain']:+.3g} | {t['candidates_mean']:.3g} | "
                         f"{t['winner_tokens']:.0f} | {t['truncated_winners']:.0%} |")
    lines += ["", "Mean ± sd over seeds; in brackets, % change of the mean against base and against passive. "
              "Bold: the attribute the condition targets. Paper's headline active-inheritance changes: "
              + ", ".join(f"{labels[k]} {v}" for k, v in summary["paper"].items()) + "."]
    return "\n".join(lines)


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["conditions"])
    fig, axes = plt.subplots(1, len(ATTRIBUTES), figsize=(4 * len(ATTRIBUTES), 4))
    for ax, a in zip(axes, ATTRIBUTES):
        means = [summary["conditions"][n][a]["mean"] for n in names]
        sds = [summary["conditions"][n][a]["sd"] for n in names]
        colors = ["#888888" if n in ("base", "passive") else
                  "#d62728" if summary["targets"].get(n, [None])[0] == a else "#1f77b4" for n in names]
        ax.bar(range(len(names)), means, yerr=sds, color=colors, capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(a)
    fig.suptitle("Held-out attributes per condition (mean ± sd over seeds; red: the targeted attribute)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="Toy model, a few prompts, one seed.")
    parser.add_argument("--output", default=None, help="Results folder (default benchmarks/results/replicate).")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--conditions", nargs="+", default=None, choices=[c.name for c in CONDITIONS])
    parser.add_argument("--summary-only", action="store_true", help="Summarize the finished runs; run nothing.")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default=None,
                        help="An ablation: the same protocol with one setting changed (see VARIANTS), compared with "
                        "the main run's base and passive.")
    args = parser.parse_args(argv)
    quiet()
    sizes = SMOKE if args.smoke else Sizes()
    if args.seeds:
        sizes.seeds = tuple(args.seeds)
    name = "replicate-smoke" if args.smoke else "replicate"
    main_out = Path(args.output or RESULTS / name)
    reference = None
    if args.variant:
        for key, value in VARIANTS[args.variant].items():
            setattr(sizes, key, value)
        if (main_out / "replicate.json").exists():
            reference = json.loads((main_out / "replicate.json").read_text())
    out = main_out.parent / f"{main_out.name}-{args.variant}" if args.variant else main_out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    sets = prompt_sets(sizes)
    conditions = [c for c in CONDITIONS if not args.conditions or c.name in args.conditions]
    for seed in [] if args.summary_only else sizes.seeds:
        for cond in conditions:
            path = out / "runs" / f"{cond.name}-seed{seed}.json"
            if path.exists():
                continue  # finished before an interruption
            result = run_one(cond, seed, sets, sizes, out)
            path.write_text(json.dumps(result, indent=2))
            print(f"{cond.name} seed {seed}: " + ", ".join(f"{a} {result[a]:.3g}" for a in ATTRIBUTES)
                  + f" (train {result['train_seconds']:.0f} s, eval {result['eval_seconds']:.0f} s)", flush=True)
    runs = [r for p in sorted((out / "runs").glob("*.json")) for r in [json.loads(p.read_text())]
            if r["seed"] in sizes.seeds]
    summary = summarize(runs, sizes, reference)
    (out / "replicate.json").write_text(json.dumps(summary, indent=2))
    (out / "replicate.md").write_text(markdown(summary) + "\n")
    figure(summary, out / "replicate.png")
    print(markdown(summary))
    return summary


if __name__ == "__main__":
    main()
