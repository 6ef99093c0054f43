"""The main job's settings, chosen on a development split so its held-out prompts never choose them.

    python benchmarks/main_job.py                                 # every variant, seed 42
    python benchmarks/main_job.py --variants k8_p1.0_offline_64 --seeds 42 7
    python benchmarks/main_job.py --smoke                         # the toy model (CI)

The built-in instructions' train split (58 topics) is cut by topic: 12 topics (84 instructions, the size of the
test split) become a development "test" split and the other 46 topics the development train split. Each variant
runs the main job itself (`ail_trainer.scripts.train.main`, the packaged `lexical_diversity.yaml` recipe) on that
dataset with a few fields overridden, so the recipe's own held-out report (paired bootstrap 95% intervals over
prompts) is measured on development prompts, together with the job's wall time on this machine. The shipped recipe
is then set from these runs and measured once on the real test split by `accelerate launch recipes/train.py`.

Each run writes `runs/<variant>-seed<s>.json` when it finishes and a rerun skips it. The summary is
`main_job.json` and `main_job.md`.

`--shipped` runs the README's main-job command itself (`accelerate launch recipes/train.py`, the real test split) and
records its printed report and wall time in `shipped.json`, from which the README's main-job block is written
(`python scripts/docs_tables.py readme`). `--shipped --seeds 7` runs the same command with `--seed 7` into
`shipped-seed7.json`: whether the sign holds on another seed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, machine, quiet

DEV_TOPICS = 12
# the variants were measured without common random numbers, which the recipe now turns on; the crn variant sets it
EVAL = ["--eval_max_prompts", "84", "--eval_samples_per_prompt", "2", "--eval_coupled", "false",
        "--bf16", "false"]  # the variants were measured in float32 before the recipe turned bf16 autocast on
# command-line overrides of the packaged recipe, each a complete set of the fields that the variants change
OFFLINE_64 = ["--top_p", "1.0", "--num_candidates", "8", "--candidate_generation", "offline", "--train_max_prompts",
              "64", "--per_device_train_batch_size", "8", "--learning_rate", "1e-5", *EVAL]
VARIANTS: dict[str, list[str]] = {
    "k4_p0.9_online_32": ["--top_p", "0.9", "--num_candidates", "4", "--candidate_generation", "online",
                          "--train_max_prompts", "32", "--num_train_epochs", "2", "--per_device_train_batch_size",
                          "4", "--learning_rate", "1e-5", "--eval_top_p", "0.9", *EVAL],
    "k8_p1.0_offline_64": [*OFFLINE_64, "--num_train_epochs", "2", "--eval_top_p", "1.0"],
    "k8_p1.0_offline_64_lr2e-5": [*OFFLINE_64, "--num_train_epochs", "2", "--eval_top_p", "1.0",
                                  "--learning_rate", "2e-5"],
    # held-out answers sampled at the paper's top_p 0.9 (as benchmarks/shared_pool.py measures), training unchanged
    "k8_p1.0_offline_64_eval0.9": [*OFFLINE_64, "--num_train_epochs", "2", "--eval_top_p", "0.9"],
    "k8_p1.0_offline_64_epochs4": [*OFFLINE_64, "--num_train_epochs", "4", "--eval_top_p", "1.0"],
    # the shipped recipe's trained model, its held-out answers sampled with common random numbers
    "k8_p1.0_offline_64_crn": [*OFFLINE_64, "--num_train_epochs", "2", "--eval_top_p", "1.0", "--eval_coupled",
                               "true"],
    # the crn variant with training and sampling under bf16 autocast (speed: benchmarks/bench_precision.py), the
    # held-out answers too
    "k8_p1.0_offline_64_crn_bf16": [*OFFLINE_64, "--num_train_epochs", "2", "--eval_top_p", "1.0", "--eval_coupled",
                                    "true", "--bf16", "true", "--eval_autocast", "true"],
    # bf16 training and candidates, the held-out answers of both models sampled in float32
    "k8_p1.0_offline_64_crn_bf16_eval32": [*OFFLINE_64, "--num_train_epochs", "2", "--eval_top_p", "1.0",
                                           "--eval_coupled", "true", "--bf16", "true", "--eval_autocast", "false"],
    # the crn variant on three quarters of the prompts (384 candidates, 12 steps): the 10-minute budget on 2 cores
    "k8_p1.0_offline_48_crn": [*OFFLINE_64, "--train_max_prompts", "48", "--num_train_epochs", "2", "--eval_top_p",
                               "1.0", "--eval_coupled", "true"],
    # the same sampling budget (512 candidates, 16 steps) from the current policy: 32 prompts, 4 rounds
    "k8_p1.0_online_32": ["--top_p", "1.0", "--num_candidates", "8", "--candidate_generation", "online",
                          "--generation_steps", "4", "--train_max_prompts", "32", "--num_train_epochs", "2",
                          "--per_device_train_batch_size", "4", "--learning_rate", "1e-5", "--eval_top_p", "1.0",
                          *EVAL],
}
# the toy model and a few prompts: the mechanics only (CI)
SMOKE = ["--model_name_or_path", "builtin:tiny-chat", "--train_max_prompts", "4", "--eval_max_prompts", "3",
         "--eval_samples_per_prompt", "1", "--max_completion_length", "8", "--generation_batch_size", "4"]


def dev_dataset(folder: Path) -> Path:
    """`train.jsonl` and `test.jsonl`: the train split's instructions, cut by topic."""
    from ail_trainer.prompts import as_chat, load_instructions

    rows = load_instructions("train")
    topics = sorted({r["topic"] for r in rows})
    held = set(np.random.default_rng(0).choice(topics, DEV_TOPICS, replace=False).tolist())
    folder.mkdir(parents=True, exist_ok=True)
    for split, keep in (("train", lambda r: r["topic"] not in held), ("test", lambda r: r["topic"] in held)):
        (folder / f"{split}.jsonl").write_text("".join(
            json.dumps({"prompt": as_chat(r["prompt"]), "topic": r["topic"], "kind": r["kind"]}) + "\n"
            for r in rows if keep(r)))
    return folder


def run(variant: str, seed: int, data: Path, work: Path, smoke: bool = False) -> dict:
    from ail_trainer.scripts.train import DEFAULT_CONFIG, main

    out = work / f"{variant}-seed{seed}"
    began = time.perf_counter()
    main(["--config", str(DEFAULT_CONFIG), "--dataset_name", str(data), "--output_dir", str(out),
          "--seed", str(seed), "--logging_steps", "1000", *VARIANTS[variant], *(SMOKE if smoke else [])])
    seconds = time.perf_counter() - began
    card = json.loads((out / "active_inheritance.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return {"variant": variant, "seed": seed, "overrides": VARIANTS[variant], "seconds": seconds,
            "report": {k: v for k, v in card["held_out"].items() if k != "examples"}}


SHIPPED_SEED = 42  # the recipe's own seed: the README's command as written


def shipped_record(stdout: str, seconds: float, output_dir: Path, command: str) -> dict:
    """The main job's printed held-out report (from its first line to the two answers side by side) and card."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Held-out prompts:"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("{"))
    card = json.loads((output_dir / "active_inheritance.json").read_text())
    return {"command": command, "seconds": seconds, "machine": machine(),
            "printed": "\n".join(lines[start:end]).strip(), "held_out": card["held_out"], "rounds": card["rounds"]}


def run_shipped(out: Path, seed: int = SHIPPED_SEED) -> dict:
    """The README's main-job command, timed as a user runs it (`shipped.json`); another seed adds `--seed` and its
    own output folder (`shipped-seed<s>.json`)."""
    output_dir = Path("outputs") / "offline-lexical-diversity"
    extra = [] if seed == SHIPPED_SEED else ["--seed", str(seed), "--output_dir", f"{output_dir}-seed{seed}"]
    command = " ".join(["accelerate launch recipes/train.py", *extra])
    began = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).with_name("accelerate")), "launch", "recipes/train.py", *extra],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"The main job failed:\n{proc.stderr[-3000:]}")
    folder = ROOT / (extra[-1] if extra else output_dir)
    record = shipped_record(proc.stdout, time.perf_counter() - began, folder, command)
    name = "shipped.json" if seed == SHIPPED_SEED else f"shipped-seed{seed}.json"
    (out / name).write_text(json.dumps(record, indent=1))
    return record


def markdown(runs: list[dict]) -> str:
    lines = ["| variant | seed | held-out prompts × samples (top_p) | MTLD before → after | MTLD change [95%] | "
             "tokens change [95%] | wall time |", "|---" * 7 + "|"]
    for r in runs:
        rep = r["report"]
        c = lambda key, rep=rep: "{:+.1f}% [{:+.1f}, {:+.1f}]".format(rep["change"][key]["change_pct"],
                                                                     *rep["change"][key]["ci95_pct"])
        top_p = rep.get("top_p", float(r["overrides"][r["overrides"].index("--top_p") + 1]))  # runs before eval_top_p
        lines.append(f"| {r['variant']} | {r['seed']} | {rep['held_out_prompts']} × {rep['samples_per_prompt']} "
                     f"({top_p:g}{', CRN' if rep.get('coupled') else ''}) | "
                     f"{rep['before']['mtld']:.1f} → {rep['after']['mtld']:.1f} | {c('mtld')} | {c('tokens')} | "
                     f"{r['seconds'] / 60:.1f} min |")
    lines += ["", "Development split: 84 instructions on 12 topics of the train split, never trained on by these "
              "runs. Intervals: paired bootstrap over prompts, as the main job prints them. CRN: both models' held-out "
              "answers sampled with common random numbers (`eval_coupled`). Wall time: the whole job in one process "
              "(training, both held-out passes), SmolLM2 already converted, on the machine of the day."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[SHIPPED_SEED])
    parser.add_argument("--output", default=None, help="Results folder (default benchmarks/results/main-job).")
    parser.add_argument("--smoke", action="store_true", help="The toy model, a few prompts (the mechanics only).")
    parser.add_argument("--shipped", action="store_true",
                        help="Run and record the README's main-job command only (on the real test split), once per "
                        "--seeds (default its own seed, 42).")
    args = parser.parse_args(argv)
    quiet()
    out = Path(args.output or RESULTS / ("main-job-smoke" if args.smoke else "main-job"))
    (out / "runs").mkdir(parents=True, exist_ok=True)
    if args.shipped:
        records = [run_shipped(out, seed) for seed in args.seeds]
        for record in records:
            print(record["command"], f"({record['seconds'] / 60:.1f} min)\n{record['printed']}\n")
        return records
    data = dev_dataset(out / "work" / "dev-data")
    for seed in args.seeds:
        for variant in args.variants:
            path = out / "runs" / f"{variant}-seed{seed}.json"
            if not path.exists():
                path.write_text(json.dumps(run(variant, seed, data, out / "work", args.smoke), indent=1))
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    (out / "main_job.json").write_text(json.dumps({"machine": machine(), "runs": runs}, indent=1))
    (out / "main_job.md").write_text(markdown(runs) + "\n")
    print(markdown(runs))
    return runs


if __name__ == "__main__":
    main()
