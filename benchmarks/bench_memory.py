"""Peak resident memory: plain SFTTrainer, ActiveInheritanceTrainer, and ActiveInheritanceTrainer with one teacher.

    python benchmarks/bench_memory.py [--smoke]

Each configuration runs one epoch in its own process (peak RSS is per process). The teacher is a second model of
the same size, given as a path: with it held once, the run should grow by about its weights and no more.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile

from common import BENCH_MODEL, SMOKE_MODEL, cached_tiny_model, load, model_path, prompts, quiet, save


def teacher_path(smoke: bool) -> str:
    """A second model of the benchmark's size, with other weights."""
    spec = SMOKE_MODEL if smoke else BENCH_MODEL
    return cached_tiny_model("teacher-smoke" if smoke else "teacher-14m", seed=1, **spec)


def run(mode: str, smoke: bool) -> None:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer

    quiet()
    path = model_path(smoke)
    model, tok = load(path)
    n = 8 if smoke else 32
    common = dict(per_device_train_batch_size=8, num_train_epochs=1, report_to=[], save_strategy="no",
                  disable_tqdm=True, logging_steps=1000, bf16=False)
    if mode == "sft":
        data = Dataset.from_dict({"prompt": prompts(n), "completion": [" A short answer."] * n})
        SFTTrainer(model, SFTConfig(tempfile.mkdtemp(), **common), train_dataset=data, processing_class=tok).train()
    else:
        teachers = [teacher_path(smoke)] if mode == "ai_teacher" else None
        args = ActiveInheritanceConfig(tempfile.mkdtemp(), num_candidates=4, max_completion_length=8 if smoke else 48,
                                       generation_batch_size=16, **common)
        ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": prompts(n)}),
                                 processing_class=tok, reward_funcs=["mtld"], teachers=teachers).train()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"mode": mode, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "model_mb": params / 2**20}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["sft", "ai", "ai_teacher"])
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.mode:
        return run(args.mode, args.smoke)
    model_path(args.smoke), teacher_path(args.smoke)  # build once, outside the measured processes
    rows = {}
    for mode in ("sft", "ai", "ai_teacher"):
        cmd = [sys.executable, __file__, "--mode", mode] + (["--smoke"] if args.smoke else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows[mode] = json.loads(out.strip().splitlines()[-1])
    sft, ai, teacher = (rows[m]["peak_rss_mb"] for m in ("sft", "ai", "ai_teacher"))
    model_mb = rows["sft"]["model_mb"]
    print(f"Peak RSS (model weights {model_mb:.0f} MB fp32)")
    print(f"  {'plain SFTTrainer':<40}{sft:>9.0f} MB  1.00x")
    print(f"  {'ActiveInheritanceTrainer':<40}{ai:>9.0f} MB  {ai / sft:.2f}x")
    print(f"  {'ActiveInheritanceTrainer + 1 teacher':<40}{teacher:>9.0f} MB  {teacher / sft:.2f}x")
    print(f"teacher adds {teacher - ai:.0f} MB for {model_mb:.0f} MB of teacher weights")
    print("results:", save("memory", {"runs": rows, "teacher_delta_mb": teacher - ai}, args.output))


if __name__ == "__main__":
    main()
