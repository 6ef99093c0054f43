"""Time to the first optimizer step and peak memory, 1k prompts against 100k: a round must not grow with the data.

    python benchmarks/bench_scale.py [--smoke]

Each size runs in its own process: build the trainer on a synthetic prompt-only dataset, train until the first
optimizer step, stop. The clock starts before the trainer is built. Tiny model, k=2, 8 new tokens. With the default
round size (`generation_steps`), the first step waits for one round's prompts, not the whole epoch's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

from common import load, model_path, quiet, save


def run(n: int, smoke: bool) -> None:
    from datasets import Dataset
    from transformers import TrainerCallback

    from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer

    quiet()
    model, tok = load(model_path(smoke=True))
    topics = ["rivers", "bread", "chess", "tides", "bees", "glass", "maps", "clocks", "salt", "kites"]
    data = Dataset.from_dict({"prompt": [f"Explain {topics[i % 10]} to reader number {i}." for i in range(n)]})
    first_step = {}

    class StopAtFirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            first_step["s"] = time.perf_counter() - start
            control.should_training_stop = True

    start = time.perf_counter()
    args = ActiveInheritanceConfig(tempfile.mkdtemp(), num_candidates=2, max_completion_length=8,
                                   per_device_train_batch_size=8, generation_batch_size=16, report_to=[],
                                   save_strategy="no", disable_tqdm=True, logging_steps=1000, bf16=False)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=data, processing_class=tok, reward_funcs=["mtld"],
                                       callbacks=[StopAtFirstStep()])
    trainer.train()
    print(json.dumps({"prompts": n, "first_step_s": first_step["s"],
                      "round_prompts": len(trainer.schedule.round_prompts(0, 0)),
                      "rounds_per_epoch": trainer.schedule.rounds_per_epoch,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, nargs=2, default=[1_000, 100_000])
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.run:
        return run(args.run, args.smoke)
    if args.smoke:
        args.prompts = [200, 2_000]
    model_path(smoke=True)  # built once, outside the measured processes
    rows = []
    for n in args.prompts:
        out = subprocess.run([sys.executable, __file__, "--run", str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    small, large = rows
    time_ratio = large["first_step_s"] / small["first_step_s"]
    memory_ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    print(f"{'prompts':>10}{'round prompts':>15}{'first step (s)':>16}{'peak RSS (MB)':>15}")
    for r in rows:
        print(f"{r['prompts']:>10}{r['round_prompts']:>15}{r['first_step_s']:>16.2f}{r['peak_rss_mb']:>15.0f}")
    print(f"{large['prompts']} / {small['prompts']} prompts: first step {time_ratio:.2f}x, "
          f"peak RSS {memory_ratio:.2f}x")
    print("results:", save("scale", {"runs": rows, "first_step_ratio": time_ratio, "peak_rss_ratio": memory_ratio},
                           args.output))


if __name__ == "__main__":
    main()
