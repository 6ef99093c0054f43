"""Where one active-inheritance epoch spends its time: generation, scoring, forward+backward, optimizer, the rest.

    python benchmarks/bench_round.py [--smoke]

"Bookkeeping" is everything in `trainer.train()` that is not a model forward/backward (generation included) or
reward scoring: scheduling, selection, gathering, record writing, winner tokenization, collation, logging.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict

from common import load, model_path, prompts, quiet, save
from transformers import TrainerCallback


class Timer:
    def __init__(self):
        self.seconds = defaultdict(float)

    def wrap(self, owner, name, key):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - start

        setattr(owner, name, timed)


class OptimizerTimer(TrainerCallback):
    def __init__(self, timer):
        self.timer, self.start = timer, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.timer.seconds["optimizer step"] += time.perf_counter() - self.start


def build(path, n_prompts, k, new_tokens, batch, out):
    from datasets import Dataset

    from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer

    model, tok = load(path)
    args = ActiveInheritanceConfig(
        out, num_candidates=k, max_completion_length=new_tokens, generation_batch_size=16,
        per_device_train_batch_size=batch, num_train_epochs=1, learning_rate=1e-4, report_to=[], save_strategy="no",
        disable_tqdm=True, logging_steps=1000, seed=0)
    return ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": prompts(n_prompts)}),
                                    processing_class=tok, reward_funcs=["mtld", "length"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    quiet()
    if args.smoke:
        args.prompts, args.k, args.new_tokens, args.batch = 8, 2, 4, 4
    import ail_trainer.round as round_module
    import ail_trainer.sources as sources_module

    trainer = build(model_path(args.smoke), args.prompts, args.k, args.new_tokens, args.batch, tempfile.mkdtemp())
    timer = Timer()
    timer.wrap(sources_module, "generate", "generation")
    timer.wrap(round_module, "score_candidates", "reward scoring")
    timer.wrap(trainer, "training_step", "forward + backward")
    trainer.add_callback(OptimizerTimer(timer))
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    parts = dict(timer.seconds)
    parts["bookkeeping"] = total - sum(parts.values())
    shares = {k: v / total * 100 for k, v in parts.items()}

    print(f"One epoch: {args.prompts} prompts, k={args.k}, {args.new_tokens} new tokens, batch {args.batch}: "
          f"{total:.2f} s")
    for name, seconds in parts.items():
        print(f"  {name:<22}{seconds:>8.3f} s {shares[name]:>6.1f}%")
    print("results:", save("round", {"total_s": total, "seconds": parts, "percent": shares, **vars(args)},
                           args.output))


if __name__ == "__main__":
    main()
