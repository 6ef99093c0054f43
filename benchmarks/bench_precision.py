"""The main job in float32 against bf16 autocast (`bf16: true`: float32 weights, bf16 matmuls) on
SmolLM2-135M-Instruct, each pair interleaved `--repeats` times after one untimed call of each:

1. **Training.** One optimizer step on a batch shaped like the main job's (`bench_checkpointing.batch`: 8 built-in
   instructions, each followed by 115 answer tokens; checkpointing off, as the recipe sets it). Seconds per step.
2. **Sampling.** One candidate batch (16 instructions × 8 samples, `--max-new-tokens` tokens, top_p 1.0) through the
   trainer's own sampler (`generation.generate`). Completion tokens per second.

bf16 pays off only on a CPU with native bf16 instructions (AVX512-BF16 or AMX); elsewhere it is emulated.

    python benchmarks/bench_precision.py
    python benchmarks/bench_precision.py --smoke     # the toy model (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics

import torch
from bench_checkpointing import batch, train_step
from common import interleaved, machine, quiet, save

PATHS = ("float32 (before)", "bf16 autocast")


def autocast(path: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if path == PATHS[1] else contextlib.nullcontext()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--completion-tokens", type=int, default=115)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=None)
    a = parser.parse_args(argv)
    quiet()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ail_trainer.builtin import builtin_model_path
    from ail_trainer.generation import SamplingSettings, build_generation_config, generate, render_prompts
    from ail_trainer.prompts import as_chat, load_instructions

    if a.smoke:
        a.batch, a.completion_tokens, a.prompts, a.samples, a.max_new_tokens, a.repeats = 2, 8, 2, 2, 8, 1
    model_name = "builtin:tiny-chat" if a.smoke else "builtin:smollm2-135m-instruct"
    path = builtin_model_path(model_name)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    rows = [as_chat(r["prompt"]) for r in load_instructions("train")]
    inputs = batch(tok, render_prompts(rows[: a.batch], tok, True), a.completion_tokens)

    def step(path: str) -> None:
        model.train()
        with autocast(path):
            train_step(model, optimizer, inputs)

    train_s = interleaved({p: (lambda p=p: step(p)) for p in PATHS}, a.repeats)
    ids = render_prompts(rows[: a.prompts], tok, True)
    config = build_generation_config(SamplingSettings(a.max_new_tokens, temperature=1.0, top_p=1.0), model, tok)
    tokens: dict[str, int] = {}

    def sample(path: str) -> None:
        model.eval()
        with autocast(path):
            out = generate(model, tok, ids, a.samples, config, a.prompts, show_progress=False, noise_seed=1234)
        tokens[path] = sum(len(g.ids) for row in out for g in row)

    sample_s = interleaved({p: (lambda p=p: sample(p)) for p in PATHS}, a.repeats)
    train = {p: statistics.median(v) for p, v in train_s.items()}
    # the two precisions sample different answers, so each path's speed is its own tokens over its own time
    sampling = {p: tokens[p] / statistics.median(v) for p, v in sample_s.items()}
    result = {"model": model_name, "batch": a.batch, "tokens_per_row": inputs["input_ids"].shape[1],
              "train_seconds": train_s, "train_median_s": train, "train_speedup": train[PATHS[0]] / train[PATHS[1]],
              "rows": a.prompts * a.samples, "max_new_tokens": a.max_new_tokens, "sample_seconds": sample_s,
              "sample_tokens": tokens, "sample_tokens_per_s": sampling,
              "sample_speedup": sampling[PATHS[1]] / sampling[PATHS[0]]}
    print(machine())
    print("\n".join(f"training, {p}: {s:.2f} s a step" for p, s in train.items())
          + f"\ntraining speedup {result['train_speedup']:.2f}x ({a.batch} rows of {result['tokens_per_row']} tokens)")
    print("\n".join(f"sampling, {p}: {s:.1f} tokens/s" for p, s in sampling.items())
          + f"\nsampling speedup {result['sample_speedup']:.2f}x ({result['rows']} rows, {a.max_new_tokens} tokens)")
    save("precision", result, a.output)
    return result


if __name__ == "__main__":
    main()
