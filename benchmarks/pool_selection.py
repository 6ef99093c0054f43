"""How selection rules trade MTLD against fluency on a shared pool's training prompts (no held-out prompt is read).

    python benchmarks/pool_selection.py                   # the top_p 1.0 pool of seed 0
    python benchmarks/pool_selection.py --pool pool-p1.0-seed1 --prompts 64 --floors -2.0 -2.5

Every candidate of the pool is scored once with MTLD and with the `likelihood` reward under the base model (its mean
per-token log-probability given the prompt), cached in `<pool>/scores/`. Each rule then picks one winner per
prompt, and the table gives the winners' mean MTLD and NLL (= -likelihood) against the mean candidate: the selection
gain each rule hands to SFT. A rule for a shared-pool condition is chosen here, before any held-out evaluation:
`mtld_fluent_k8_p1.0` takes the rule with the highest winners' MTLD among those whose winners' NLL is no higher than
the mean candidate's, on the first 64 prompts of seed 0's top_p 1.0 pool (z-score MTLD + 0.5 likelihood).
A `likelihood >= floor` constraint (`--floors`) only bites on prompts where some candidate meets it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import RESULTS, quiet
from shared_pool import SMOKE, Sizes, model_path, prompt_sets

from ail_trainer.selection import combine, select


def candidate_scores(folder: Path, sizes: Sizes, n: int | None = None) -> dict[str, np.ndarray]:
    """(prompts, pool_k) arrays of MTLD, likelihood under the base model and finished, for the pool's first n prompts
    (all by default). Scored chunk by chunk into `<pool>/scores/` beside the pool's own chunks, so a killed run
    resumes; a forward pass per candidate costs about 0.5 s for SmolLM2 on 2 cores."""
    from ail_trainer.rewards import MTLD
    from ail_trainer.rewards.likelihood import Likelihood

    prompts = prompt_sets(sizes)["train"]
    (folder / "scores").mkdir(exist_ok=True)
    likelihood, out = None, []
    for path in sorted(folder.glob("chunk-*.json")):
        if n is not None and sum(len(c["mtld"]) for c in out) >= n:
            break
        cache = folder / "scores" / path.name
        if not cache.exists():
            chunk = json.loads(path.read_text())
            rows, first = chunk["pool"], chunk["start"]
            flat_prompts = [prompts[first + i] for i, row in enumerate(rows) for _ in row]
            flat = [c["text"] for row in rows for c in row]
            likelihood = likelihood or Likelihood(model_path(sizes))
            began = time.perf_counter()
            scores = {"mtld": MTLD()(completions=flat),
                      "likelihood": likelihood(prompts=flat_prompts, completions=flat),
                      "finished": [float(c["finished"]) for row in rows for c in row]}
            k = len(rows[0])
            cache.write_text(json.dumps({key: [v[i : i + k] for i in range(0, len(v), k)]
                                         for key, v in scores.items()}))
            print(f"{folder.name}: scored prompts {first}-{first + len(rows) - 1} "
                  f"({time.perf_counter() - began:.0f} s)", flush=True)
        out.append(json.loads(cache.read_text()))
    return {key: np.asarray([[np.nan if v is None else v for v in row] for c in out for row in c[key]][:n])
            for key in ("mtld", "likelihood", "finished")}


class PoolLikelihood:
    """The `likelihood` reward read back from a pool's scores (`candidate_scores`), by candidate text: every
    condition on the pool then shares one scoring pass instead of repeating it in each trainer. Text that is not a
    pool candidate (the trainer's test call before training) is scored by the reward itself."""

    __name__ = "likelihood"

    def __init__(self, folder: Path, sizes: Sizes):
        candidate_scores(folder, sizes)  # scores what is missing
        self.sizes, self.reward, self.lookup = sizes, None, {}
        for path in sorted(folder.glob("chunk-*.json")):
            rows = json.loads(path.read_text())["pool"]
            scored = json.loads((folder / "scores" / path.name).read_text())["likelihood"]
            self.lookup.update((c["text"], v) for row, values in zip(rows, scored) for c, v in zip(row, values))

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float | None]:
        from ail_trainer.rewards import completion_texts

        texts = completion_texts(self.__name__, completions)
        if all(t in self.lookup for t in texts):
            return [self.lookup[t] for t in texts]
        if self.reward is None:
            from ail_trainer.rewards.likelihood import Likelihood

            self.reward = Likelihood(model_path(self.sizes))
        return self.reward(prompts=prompts, completions=completions)


RULES = {  # name: (weights over [mtld, likelihood], normalization, minimum likelihood or None)
    "passive (candidate 0)": None,
    "mtld": ([1.0, 0.0], "none", None),
    "likelihood": ([0.0, 1.0], "none", None),
    "rank: mtld + 0.25 likelihood": ([1.0, 0.25], "rank", None),
    "rank: mtld + 0.5 likelihood": ([1.0, 0.5], "rank", None),
    "rank: mtld + likelihood": ([1.0, 1.0], "rank", None),
    "zscore: mtld + 0.25 likelihood": ([1.0, 0.25], "zscore", None),
    "zscore: mtld + 0.5 likelihood": ([1.0, 0.5], "zscore", None),  # mtld_fluent_k8_p1.0
    "zscore: mtld + likelihood": ([1.0, 1.0], "zscore", None),
}


def winners(scores: dict[str, np.ndarray], rule) -> np.ndarray:
    if rule is None:
        return np.zeros(len(scores["mtld"]), dtype=int)
    weights, method, floor = rule
    out = []
    for m, lk in zip(scores["mtld"], scores["likelihood"]):
        table = np.stack([m, lk], axis=1)
        feasible = np.ones(len(m), bool) if floor is None else lk >= floor
        out.append(select(combine(table, np.asarray(weights), method), feasible)[0])
    return np.asarray(out)


def report(scores: dict[str, np.ndarray], floors: list[float]) -> str:
    rules = dict(RULES)
    for floor in floors:
        rules[f"mtld, likelihood >= {floor:g}"] = ([1.0, 0.0], "none", floor)
    mean_mtld, mean_nll = np.nanmean(scores["mtld"]), -np.nanmean(scores["likelihood"])
    rows = np.arange(len(scores["mtld"]))
    lines = [f"{len(rows)} prompts × {scores['mtld'].shape[1]} candidates; mean candidate: MTLD {mean_mtld:.1f}, "
             f"NLL {mean_nll:.3f}", "",
             "| rule | winners' MTLD | vs mean candidate | winners' NLL | vs mean candidate | finished |",
             "|---|---|---|---|---|---|"]
    for name, rule in rules.items():
        w = winners(scores, rule)
        m, nll = scores["mtld"][rows, w].mean(), -scores["likelihood"][rows, w].mean()
        lines.append(f"| {name} | {m:.1f} | {100 * (m / mean_mtld - 1):+.1f}% | {nll:.3f} | "
                     f"{100 * (nll / mean_nll - 1):+.1f}% | {scores['finished'][rows, w].mean():.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", default="pool-p1.0-seed0", help="A pool folder under the shared-pool results.")
    parser.add_argument("--output", default=None, help="Results folder (default benchmarks/results/shared-pool).")
    parser.add_argument("--smoke", action="store_true", help="The toy model's pool (shared_pool.py --smoke).")
    parser.add_argument("--prompts", type=int, default=None, help="Only the pool's first prompts (default all).")
    parser.add_argument("--floors", type=float, nargs="*", default=[], help="Likelihood floors to try as constraints.")
    args = parser.parse_args(argv)
    quiet()
    folder = Path(args.output or RESULTS / ("shared-pool-smoke" if args.smoke else "shared-pool")) / args.pool
    if not folder.is_dir():
        raise SystemExit(f"No pool at {folder}: sample it first with benchmarks/shared_pool.py.")
    scores = candidate_scores(folder, SMOKE if args.smoke else Sizes(), args.prompts)
    text = report(scores, args.floors)
    print(text)
    (folder.parent / f"selection-{args.pool}-{len(scores['mtld'])}prompts.md").write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
