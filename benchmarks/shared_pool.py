"""The paper's offline protocol on one shared candidate pool per seed, measured on held-out prompts with intervals.

    python benchmarks/shared_pool.py                       # SmolLM2-135M-Instruct, seeds 0 1 2, every condition
    python benchmarks/shared_pool.py --seeds 0 --conditions base passive mtld_k8
    python benchmarks/shared_pool.py --seeds 0 --conditions mtld_k8_beta0.1   # a lever, against mtld_k8
    python benchmarks/shared_pool.py --conditions base length_up_k8_p1.0 --eval-cap 384   # room for length up
    python benchmarks/shared_pool.py --smoke               # the toy model, a few prompts (CI)

Per seed:
1. **Pool.** The base model samples `pool_k` candidates for each training prompt (top_p 0.9, temperature 1.0, as the
   paper). It is written chunk by chunk (`pool-seed<s>/chunk-NNN.json`), so a killed run loses one chunk at most,
   then saved as a `datasets` folder (`pool-seed<s>/dataset`) with each candidate's text and whether it ended
   before the cap.
2. **Conditions.** Each trains the base model offline (`candidate_generation: offline`, `teacher_mode: replace`,
   the pool as `candidates_column`) on the winners among its first k candidates: passive takes candidate 0 (k=1),
   an active objective scores its first 4 or 8 with its reward. Same prompts, steps and seed for every condition.
   The levers (`LEVERS`: k=2, dropping cut-off winners, `beta`, a higher learning rate, 3 epochs, LoRA, and a second
   pool `pool-p1.0-seed<s>` sampled with top_p 1.0) each change one thing against `mtld_k8` and run only when named.
   The top_p 1.0 pool has its own passive, MTLD best-of-4/8, MTLD with a fluency term, and length ↓/↑ conditions,
   and `mtld_k8_p1.0_online` samples its 8 candidates from the current policy every 10 steps instead of the pool;
   `length_up_k8_p1.0_epochs2` trains length ↑'s winners for 2 epochs.
   "vs passive" means the passive run of the condition's own pool.
3. **Evaluation.** `eval_prompts` held-out instructions (topics never trained on) × `eval_samples` samples each, with
   the same sampling seed for every condition of a seed. Each prompt's mean enters a paired bootstrap 95% interval
   (`ail_trainer.report.percent_change`) for every % change against base and against passive (a lever also against
   `mtld_k8`), per seed and pooled over seeds (each prompt's mean over seeds).

Every step writes its file as soon as it finishes (`runs/<condition>-seed<s>.json`), and a rerun skips what exists,
so the job resumes after a kill. The summary is `shared_pool.json`, `shared_pool.md` and `shared_pool.png`.
"""

from __future__ import annotations

import gc
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, conditions_parser, machine, quiet, run_conditions

# base_nll: the base model's mean per-token negative log-likelihood of each answer, a fluency check (an incoherent
# answer scores high); runs from before it was measured lack it, and it is summarized over the runs that have it
ATTRIBUTES = ("tokens", "mtld", "capped", "base_nll")


@dataclass
class Condition:
    name: str
    k: int  # candidates of the pool the condition selects from; 0: no training
    rewards: list = field(default_factory=list)
    target: str | None = None
    direction: int = 0
    overrides: dict = field(default_factory=dict)  # ActiveInheritanceConfig fields that differ from `Sizes`
    lora: dict | None = None  # peft LoraConfig fields: train an adapter instead of every weight
    pool: str = "p0.9"  # the candidate pool it selects from (`POOLS`)
    online: bool = False  # sample k candidates from the current policy every `ONLINE_STEPS`, as the pool is sampled


@dataclass(frozen=True)
class PoolSampling:
    temperature: float
    top_p: float


# p0.9 is the paper's sampling. p1.0 samples the model's own distribution: SFT on exact samples of the model leaves
# it where it is in expectation, so any change comes from selection, not from the nucleus cut.
POOLS = {"p0.9": PoolSampling(1.0, 0.9), "p1.0": PoolSampling(1.0, 1.0)}


MTLD = (["mtld"], "mtld", +1)
CONDITIONS = [
    Condition("base", 0),
    Condition("passive", 1, ["length"]),  # k=1: candidate 0, whatever it scores
    Condition("mtld_k8", 8, *MTLD),
    Condition("mtld_k4", 4, *MTLD),
    Condition("length_down_k4", 4, [{"name": "length", "maximize": False}], "tokens", -1),
    Condition("length_up_k4", 4, ["length"], "tokens", +1),
]
LEVER_CONDITIONS = [  # one change at a time against mtld_k8; each runs only when named with --conditions
    Condition("mtld_k2", 2, *MTLD),
    Condition("mtld_k8_drop", 8, *MTLD, overrides={"truncated_winners": "drop"}),
    Condition("mtld_k8_beta0.1", 8, *MTLD, overrides={"beta": 0.1}),
    Condition("mtld_k8_lr3e-5", 8, *MTLD, overrides={"learning_rate": 3e-5}),
    Condition("mtld_k8_epochs3", 8, *MTLD, overrides={"num_train_epochs": 3}),
    Condition("mtld_k8_lora", 8, *MTLD, overrides={"learning_rate": 2e-4},
              lora={"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}),
    Condition("mtld_k8_p1.0", 8, *MTLD, pool="p1.0"),
    Condition("passive_p1.0", 1, ["length"], pool="p1.0"),
    Condition("mtld_k4_p1.0", 4, *MTLD, pool="p1.0"),
    Condition("mtld_k8_p1.0_online", 8, *MTLD, pool="p1.0", online=True),
    Condition("length_down_k8_p1.0", 8, [{"name": "length", "maximize": False}], "tokens", -1, pool="p1.0"),
    Condition("length_up_k8_p1.0", 8, ["length"], "tokens", +1, pool="p1.0"),
    Condition("length_up_k8_p1.0_epochs2", 8, ["length"], "tokens", +1, pool="p1.0",
              overrides={"num_train_epochs": 2}),  # the same winners twice, as toxicity's epochs lever
    # MTLD with a fluency term: the base model's likelihood of each candidate (benchmarks/pool_selection.py, where
    # the rule was chosen on training prompts only)
    Condition("mtld_fluent_k8_p1.0", 8, ["mtld", "pool_likelihood"], "mtld", +1, pool="p1.0",
              overrides={"reward_weights": [1.0, 0.5], "reward_normalization": "zscore"}),
]
LEVERS = {c.name for c in LEVER_CONDITIONS}
ONLINE_STEPS = 10  # optimizer steps per online round: 4 rounds over the 40 steps of one epoch
CONDITIONS += LEVER_CONDITIONS


@dataclass
class Sizes:
    model: str = "builtin:smollm2-135m-instruct"
    train_prompts: int = 320
    eval_prompts: int = 84
    eval_samples: int = 4
    pool_k: int = 8
    max_completion_length: int = 128
    eval_max_completion_length: int = 192  # above the training cap, so a longer answer can show as longer
    chunk: int = 16
    generation_batch_size: int = 16
    epochs: int = 1
    batch_size: int = 8
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "constant"
    truncated_winners: str = "no_eos"
    seeds: tuple = (0, 1, 2)


SMOKE = Sizes(model="builtin:tiny-chat", train_prompts=6, eval_prompts=4, eval_samples=2, max_completion_length=8,
              eval_max_completion_length=10, chunk=4, epochs=1, batch_size=2, seeds=(0,))


def prompt_sets(sizes: Sizes) -> dict[str, list]:
    """Training instructions (a fixed random subset of the train split) and held-out ones (the test split's topics
    never appear in training)."""
    from ail_trainer.prompts import as_chat, load_instructions

    train = load_instructions("train")
    order = np.random.default_rng(0).permutation(len(train))[: sizes.train_prompts]
    return {"train": [as_chat(train[i]["prompt"]) for i in order],
            "eval": [as_chat(r["prompt"]) for r in load_instructions("test")[: sizes.eval_prompts]]}


def model_path(sizes: Sizes) -> str:
    from ail_trainer.builtin import builtin_model_path

    return builtin_model_path(sizes.model)


def sample(model, tok, prompts: list, k: int, max_new_tokens: int, seed: int, batch: int,
           how: PoolSampling = POOLS["p0.9"]) -> list:
    from ail_trainer.generation import SamplingSettings, build_generation_config, generate, render_prompts

    config = build_generation_config(SamplingSettings(max_new_tokens, temperature=how.temperature, top_p=how.top_p),
                                     model, tok)
    torch.manual_seed(seed)
    return generate(model, tok, render_prompts(prompts, tok, True), k, config, batch, show_progress=False)


@torch.no_grad()
def answer_nll(model, tok, prompts: list, rows: list) -> list[list[float]]:
    """Each answer's mean per-token negative log-likelihood under `model`, given its chat prompt."""
    from ail_trainer.generation import render_prompts

    out = []
    for prompt_ids, row in zip(render_prompts(prompts, tok, True), rows):
        nll = []
        for g in row:
            ids = torch.tensor([prompt_ids + list(g.ids)])
            logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1]
            nll.append(float(torch.nn.functional.cross_entropy(logits.float(), ids[0, len(prompt_ids):])))
        out.append(nll)
    return out


def pool_folder(out: Path, name: str, seed: int) -> Path:
    return out / (f"pool-seed{seed}" if name == "p0.9" else f"pool-{name}-seed{seed}")


def build_pool(sets: dict, sizes: Sizes, seed: int, folder: Path, how: PoolSampling) -> list[list[dict]]:
    """The seed's pool, chunk by chunk; chunks already on disk are kept."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    prompts = sets["train"]
    model = tok = None
    for start in range(0, len(prompts), sizes.chunk):
        path = folder / f"chunk-{start // sizes.chunk:03d}.json"
        if path.exists():
            continue
        if model is None:
            tok = AutoTokenizer.from_pretrained(model_path(sizes))
            model = AutoModelForCausalLM.from_pretrained(model_path(sizes), dtype=torch.float32).eval()
        began = time.perf_counter()
        rows = sample(model, tok, prompts[start : start + sizes.chunk], sizes.pool_k, sizes.max_completion_length,
                      seed * 100_003 + start, sizes.generation_batch_size, how)
        pool = [[{"text": g.text, "finished": g.finished, "num_tokens": len(g.ids)} for g in row] for row in rows]
        path.write_text(json.dumps({"start": start, "seconds": time.perf_counter() - began, "pool": pool}))
        print(f"pool {folder.name}: prompts {start}-{start + len(rows) - 1} "
              f"({time.perf_counter() - began:.0f} s)", flush=True)
    chunks = [json.loads(p.read_text()) for p in sorted(folder.glob("chunk-*.json"))]
    pool = [row for c in chunks for row in c["pool"]][: len(prompts)]
    dataset_dir = folder / "dataset"
    if not dataset_dir.exists():
        from datasets import Dataset

        Dataset.from_dict({"prompt": prompts, "candidates": pool}).save_to_disk(str(dataset_dir))
    return pool


def train(cond: Condition, sets: dict, pool: list, sizes: Sizes, seed: int, work: Path):
    from datasets import Dataset

    from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer

    rows = [[{"text": c["text"], "finished": c["finished"]} for c in cands[: cond.k]] for cands in pool]
    if "pool_likelihood" in cond.rewards:  # the `likelihood` reward under the base model, scored once per pool
        from pool_selection import PoolLikelihood

        folder = pool_folder(work.parents[1], cond.pool, seed)
        rewards = [PoolLikelihood(folder, sizes) if r == "pool_likelihood" else r for r in cond.rewards]
    else:
        rewards = cond.rewards
    fields = dict(
        output_dir=str(work), candidate_generation="offline", teacher_mode="replace", candidates_column="pool",
        max_completion_length=sizes.max_completion_length, num_train_epochs=sizes.epochs,
        per_device_train_batch_size=sizes.batch_size, learning_rate=sizes.learning_rate,
        lr_scheduler_type=sizes.lr_scheduler_type, truncated_winners=sizes.truncated_winners, seed=seed,
        bf16=False, use_cpu=True, save_strategy="no", report_to="none", logging_steps=1000, disable_tqdm=True,
        num_completions_to_print=0,
    )
    data = {"prompt": sets["train"], "pool": rows}
    if cond.online:  # the policy itself, every ONLINE_STEPS steps, sampled as its pool was
        how = POOLS[cond.pool]
        fields.update(candidate_generation="online", teacher_mode="add", candidates_column=None,
                      num_candidates=cond.k, temperature=how.temperature, top_p=how.top_p,
                      generation_steps=ONLINE_STEPS, generation_batch_size=sizes.generation_batch_size)
        data = {"prompt": sets["train"]}
    peft_config = None
    if cond.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **cond.lora)
    trainer = ActiveInheritanceTrainer(model_path(sizes), reward_funcs=rewards,
                                       args=ActiveInheritanceConfig(**{**fields, **cond.overrides}),
                                       train_dataset=Dataset.from_dict(data),
                                       peft_config=peft_config)
    trainer.train()
    if cond.lora is not None:
        trainer.model = trainer.model.merge_and_unload()
    return trainer


def measure(model, tok, base, sets: dict, sizes: Sizes, seed: int) -> dict:
    """Per held-out prompt: the mean over its samples of tokens, MTLD, the cut-at-cap share and the base model's
    NLL; every answer is kept, so a later metric needs no new run."""
    from ail_trainer.rewards import MTLD

    rows = sample(model, tok, sets["eval"], sizes.eval_samples, sizes.eval_max_completion_length, 1000 + seed,
                  sizes.generation_batch_size)
    mtld = MTLD()
    per_prompt = {
        "tokens": [float(np.mean([len(g.ids) for g in row])) for row in rows],
        "mtld": [float(np.mean(mtld(completions=[g.text for g in row]))) for row in rows],
        "capped": [float(np.mean([not g.finished for g in row])) for row in rows],
        "base_nll": [float(np.mean(n)) for n in answer_nll(base, tok, sets["eval"], rows)],
    }
    return {"per_prompt": per_prompt, "means": {a: float(np.mean(v)) for a, v in per_prompt.items()},
            "examples": [{"prompt": sets["eval"][i][-1]["content"], "answer": rows[i][0].text} for i in range(2)],
            "answers": [[{"text": g.text, "finished": g.finished} for g in row] for row in rows]}


def run_one(cond: Condition, seed: int, sets: dict, pool: list, sizes: Sizes, out: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = out / "work" / f"{cond.name}-seed{seed}"
    tok = AutoTokenizer.from_pretrained(model_path(sizes))
    start = time.perf_counter()
    stats: list = []
    base = AutoModelForCausalLM.from_pretrained(model_path(sizes), dtype=torch.float32).eval()
    if cond.k == 0:
        model = base
    else:
        trainer = train(cond, sets, pool, sizes, seed, work)
        model, stats = trainer.model, trainer.round_stats
    trained = time.perf_counter() - start
    model.eval()
    result = measure(model, tok, base, sets, sizes, seed)
    result.update(condition=cond.name, seed=seed, k=cond.k, train_seconds=trained,
                  eval_seconds=time.perf_counter() - start - trained, rounds=stats)
    shutil.rmtree(work, ignore_errors=True)
    del model, base
    gc.collect()
    return result


def change(runs: dict, name: str, ref: str, attr: str, seeds: list[int]) -> dict:
    """% change of `name` against `ref` on `attr`: per seed, and pooled (each prompt's mean over seeds), each with
    its 95% paired bootstrap interval over prompts."""
    from ail_trainer.report import percent_change

    both = [s for s in seeds if attr in runs.get((name, s), {}).get("means", {})
            and attr in runs.get((ref, s), {}).get("means", {})]
    out: dict = {"per_seed": {}}
    for s in both:
        pct, low, high = percent_change(np.array(runs[ref, s]["per_prompt"][attr]),
                                        np.array(runs[name, s]["per_prompt"][attr]))
        out["per_seed"][str(s)] = [pct, low, high]
    if both:
        before = np.mean([runs[ref, s]["per_prompt"][attr] for s in both], axis=0)
        after = np.mean([runs[name, s]["per_prompt"][attr] for s in both], axis=0)
        out["pooled"] = list(percent_change(before, after))
        out["seeds"] = len(both)
    return out


def summarize(runs: dict, sizes: Sizes) -> dict:
    seeds = sorted({s for _, s in runs})
    table: dict = {}
    for cond in CONDITIONS:
        mine = [runs[cond.name, s] for s in seeds if (cond.name, s) in runs]
        if not mine:
            continue
        row: dict = {"seeds": len(mine), "means": {a: float(np.mean([r["means"][a] for r in mine if a in r["means"]]))
                                                   for a in ATTRIBUTES if any(a in r["means"] for r in mine)}}
        passive = "passive" if cond.pool == "p0.9" else f"passive_{cond.pool}"  # unselected, from the same pool
        # MTLD alone on the same pool; that condition itself (a pool lever) against the top_p 0.9 pool's
        best_of_8 = f"mtld_k8_{cond.pool}" if cond.pool != "p0.9" and cond.name != f"mtld_k8_{cond.pool}" else "mtld_k8"
        for key, ref in (("base", "base"), ("passive", passive), ("mtld_k8", best_of_8)):
            if ref != cond.name:
                row[f"vs_{key}"] = {a: change(runs, cond.name, ref, a, seeds) for a in ATTRIBUTES}
        rounds = [st for r in mine for st in r["rounds"]]
        if rounds:
            row["training"] = {  # the first reward's gain (a fluency term's comes second)
                "selection_gain": float(np.mean([next(v for k, v in st.items() if k.endswith("/selection_gain"))
                                                 for st in rounds])),
                "winner_tokens": float(np.mean([st["ai/winner_tokens_mean"] for st in rounds])),
                "truncated_winners": float(np.mean([st["ai/truncated_winners_fraction"] for st in rounds]))}
        table[cond.name] = row
    return {"machine": machine(), "sizes": asdict(sizes), "conditions": table,
            "targets": {c.name: [c.target, c.direction] for c in CONDITIONS if c.target}}


def fmt(c: dict | None) -> str:
    if not c or "pooled" not in c:
        return "–"
    pct, low, high = c["pooled"]
    return f"{pct:+.1f}% [{low:+.1f}, {high:+.1f}]"


def markdown(summary: dict) -> str:
    lines = ["| condition | pool | seeds | tokens | MTLD | capped | MTLD vs base | per seed | tokens vs base | "
             "MTLD vs passive (same pool) | MTLD vs MTLD best-of-8 | base-model NLL vs base | selection gain |",
             "|---" * 13 + "|"]
    pools, ks = {c.name: c.pool for c in CONDITIONS}, {c.name: c.k for c in CONDITIONS}
    for name, row in summary["conditions"].items():
        m = row["means"]
        vb, vp = row.get("vs_base", {}), row.get("vs_passive", {}) if name != "base" else {}
        mtld_lever = name in LEVERS and ks[name] > 1 and summary["targets"].get(name, [None])[0] == "mtld"
        vk = row.get("vs_mtld_k8", {}) if mtld_lever else {}
        per_seed = " / ".join(f"{v[0]:+.1f}" for v in vb.get("mtld", {}).get("per_seed", {}).values()) or "–"
        gain = row.get("training", {}).get("selection_gain")
        lines.append(f"| {name} | {pools[name] if name != 'base' else ''} | {row['seeds']} | {m['tokens']:.1f} | "
                     f"{m['mtld']:.1f} | {m['capped']:.0%} | {fmt(vb.get('mtld'))} | {per_seed} | "
                     f"{fmt(vb.get('tokens'))} | {fmt(vp.get('mtld'))} | {fmt(vk.get('mtld'))} | "
                     f"{fmt(vb.get('base_nll'))} | {'–' if gain is None else f'{gain:+.1f}'} |")
    lines += ["", "Means over seeds of each held-out prompt's mean. % changes are pooled over seeds (each prompt's "
              "mean over seeds), with a 95% paired bootstrap interval over prompts; \"per seed\" lists each seed's "
              "MTLD change against base. MTLD best-of-8: mtld_k8 on the same pool (mtld_k8_p1.0 itself against the "
              "top_p 0.9 pool's). Base-model NLL: the base model's mean per-token negative log-likelihood of "
              "the answers (higher reads less fluent to it), measured on runs since seed 1; its change covers the "
              "seeds where both runs have it. Selection gain: the winners' mean first reward (MTLD or length) over "
              "the mean candidate's (0 at k=1)."]
    return "\n".join(lines)


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in summary["conditions"] if n != "base"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, attr in zip(axes, ("mtld", "tokens")):
        vals = [summary["conditions"][n]["vs_base"][attr].get("pooled", [np.nan] * 3) for n in names]
        mid = [v[0] for v in vals]
        err = [[v[0] - v[1] for v in vals], [v[2] - v[0] for v in vals]]
        ax.bar(range(len(names)), mid, yerr=err, capsize=3,
               color=["#d62728" if summary["targets"].get(n, [None])[0] == attr else "#888888" for n in names])
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{attr}: % change vs base (95% interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = conditions_parser(__doc__, "shared-pool", [c.name for c in CONDITIONS])
    parser.add_argument("--eval-cap", type=int, default=None,
                        help="Held-out answers' token cap, if not the default 192 (length up needs room to grow): "
                        "the same pools, its own runs-eval<N> folder and shared_pool-eval<N> summary.")
    args = parser.parse_args(argv)
    quiet()
    sizes = SMOKE if args.smoke else Sizes()
    if args.seeds:
        sizes.seeds = tuple(args.seeds)
    suffix = ""
    if args.eval_cap is not None and args.eval_cap != sizes.eval_max_completion_length:
        sizes.eval_max_completion_length, suffix = args.eval_cap, f"-eval{args.eval_cap}"
    out = Path(args.output or RESULTS / ("shared-pool-smoke" if args.smoke else "shared-pool"))
    sets = prompt_sets(sizes)
    conditions = [c for c in CONDITIONS if (c.name in args.conditions if args.conditions else c.name not in LEVERS)]
    trained_pools = list(dict.fromkeys(c.pool for c in conditions if c.k))  # base needs none
    runs = run_conditions(
        [] if args.summary_only else conditions, sizes.seeds, out / f"runs{suffix}",
        lambda seed: {name: build_pool(sets, sizes, seed, pool_folder(out, name, seed), POOLS[name])
                      for name in trained_pools},
        lambda cond, seed, pools: run_one(cond, seed, sets, pools.get(cond.pool, []), sizes, out))
    summary = summarize(runs, sizes)
    (out / f"shared_pool{suffix}.json").write_text(json.dumps(summary, indent=1))
    (out / f"shared_pool{suffix}.md").write_text(markdown(summary) + "\n")
    figure(summary, out / f"shared_pool{suffix}.png")
    print(markdown(summary))
    return summary


if __name__ == "__main__":
    main()
