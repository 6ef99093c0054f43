"""The compacting sampler's key-value cache: transformers' concatenating `DynamicLayer` (before) against
`kv_buffer.BufferedLayer` (each new token written in place), interleaved `--repeats` times after a short warm-up.

The workload is one candidate batch of the main job: `--prompts` built-in train instructions × `--samples`,
SmolLM2-135M-Instruct, up to 128 new tokens, top_p 1.0. Both paths draw with the same common random numbers, so
their answers can be compared token for token. Figures are completion tokens per second.

    python benchmarks/bench_kv_buffer.py
    python benchmarks/bench_kv_buffer.py --smoke     # the toy model, a few prompts (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from unittest import mock

import torch
from common import machine, quiet, save

PATHS = ("concatenating DynamicLayer (before)", "BufferedLayer")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=None)
    a = parser.parse_args(argv)
    quiet()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import ail_trainer.generation as generation
    from ail_trainer.builtin import builtin_model_path
    from ail_trainer.prompts import as_chat, load_instructions

    if a.smoke:
        a.prompts, a.samples, a.max_new_tokens, a.repeats = 3, 2, 8, 1
    model_name = "builtin:tiny-chat" if a.smoke else "builtin:smollm2-135m-instruct"
    path = builtin_model_path(model_name)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = generation.render_prompts([as_chat(r["prompt"]) for r in load_instructions("train")[: a.prompts]], tok, True)

    def run(name: str, max_new_tokens: int) -> list[list[int]]:
        config = generation.build_generation_config(
            generation.SamplingSettings(max_new_tokens, temperature=1.0, top_p=1.0), model, tok)
        concatenate = mock.patch.object(generation, "buffer_cache", lambda cache, new_tokens: 0)
        with concatenate if name == PATHS[0] else contextlib.nullcontext():
            out = generation.generate(model, tok, ids, a.samples, config, len(ids), show_progress=False, noise_seed=7)
        return [g.ids for row in out for g in row]

    for name in PATHS:  # warm-up: a few tokens each
        run(name, min(8, a.max_new_tokens))
    seconds: dict[str, list[float]] = {name: [] for name in PATHS}
    answers: dict[str, list[list[int]]] = {}
    for _ in range(a.repeats):
        for name in PATHS:
            start = time.perf_counter()
            answers[name] = run(name, a.max_new_tokens)
            seconds[name].append(time.perf_counter() - start)
    runs = {name: {"tokens": sum(map(len, answers[name])), "seconds": seconds[name],
                   "tokens_per_s": sum(map(len, answers[name])) / statistics.median(seconds[name])} for name in PATHS}
    before, after = (answers[name] for name in PATHS)
    result = {"model": model_name, "prompts": a.prompts, "samples": a.samples, "max_new_tokens": a.max_new_tokens,
              "runs": runs, "speedup": runs[PATHS[1]]["tokens_per_s"] / runs[PATHS[0]]["tokens_per_s"],
              "identical_answers": sum(x == y for x, y in zip(before, after)) / len(before)}
    print(machine())
    print("\n".join(f"{name}: {r['tokens_per_s']:.1f} tokens/s" for name, r in runs.items())
          + f"\nspeedup {result['speedup']:.2f}x; identical answers {result['identical_answers']:.0%}")
    save("kv_buffer", result, a.output)
    return result


if __name__ == "__main__":
    main()
