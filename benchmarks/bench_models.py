"""The built-in real models side by side on this machine: conversion, disk, and generation speed.

    python benchmarks/bench_models.py                 # SmolLM2-135M-Instruct and Gemma 3 270M, 8 prompts, k=4
    python benchmarks/bench_models.py --fresh         # also convert each model again into an empty cache, timed
    python benchmarks/bench_models.py --smoke         # the toy model only (CI)

Each model samples the same held-out built-in instructions with our sampler (`ail_trainer.generation.generate`,
top_p 0.9, temperature 1.0), prompted as the trainer would prompt it: SmolLM2 through its chat template, the Gemma
base model through the paper's `question_answer` template with its stop strings. Figures are completion tokens per
second of wall time, after a warm-up; the ratio is each model against the first.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from common import quiet, save

FORMATS = {"builtin:gemma3-270m": "question_answer"}  # base models get the paper's template


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["builtin:smollm2-135m-instruct", "builtin:gemma3-270m"])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--batch", type=int, default=16, help="prompts per batch (the trainer's default)")
    p.add_argument("--fresh", action="store_true", help="time a conversion into an empty cache")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--output", default=None)
    a = p.parse_args(argv)
    if a.smoke:
        a.models, a.prompts, a.k, a.new_tokens = ["builtin:tiny-chat"], 2, 2, 8
    quiet()
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ail_trainer.builtin import builtin_model_path
    from ail_trainer.cache import COMPLETE
    from ail_trainer.generation import SamplingSettings, build_generation_config, generate
    from ail_trainer.prompts import as_chat, load_instructions
    from ail_trainer.templates import PromptFormat

    rows = load_instructions("test")
    prompts = [as_chat(rows[i % len(rows)]["prompt"]) for i in range(a.prompts)]
    results: dict[str, dict] = {}
    for name in a.models:
        if a.fresh:
            with tempfile.TemporaryDirectory() as cache:
                os.environ["AIL_CACHE"], previous = cache, os.environ.get("AIL_CACHE")
                start = time.perf_counter()
                builtin_model_path(name)
                fresh_s = time.perf_counter() - start
                os.environ.pop("AIL_CACHE") if previous is None else os.environ.__setitem__("AIL_CACHE", previous)
        path = Path(builtin_model_path(name))
        marker = path / COMPLETE
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        fmt = PromptFormat.resolve(FORMATS.get(name))
        ids = fmt.render(prompts, tok) if fmt.custom else [
            list(tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
            for p in prompts]
        config = build_generation_config(SamplingSettings(a.new_tokens, temperature=1.0, top_p=0.9), model, tok)
        generate(model, tok, ids[:2], 2, build_generation_config(SamplingSettings(4, top_p=0.9), model, tok), 2,
                 show_progress=False, stop_strings=fmt.stop_strings)  # warm-up
        torch.manual_seed(0)
        start = time.perf_counter()
        out = generate(model, tok, ids, a.k, config, a.batch, show_progress=False, stop_strings=fmt.stop_strings)
        seconds = time.perf_counter() - start
        tokens = sum(len(g.ids) for s in out for g in s)
        results[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": model.config.get_text_config().vocab_size,
            "prompt_format": FORMATS.get(name, "chat template"), "stop_strings": list(fmt.stop_strings),
            "disk_bytes": folder_size(path),
            "conversion_seconds": json.loads(marker.read_text()).get("seconds") if marker.is_file() else None,
            "fresh_conversion_seconds": fresh_s if a.fresh else None,
            "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "finished_share": sum(g.finished for s in out for g in s) / sum(len(s) for s in out),
            "example": out[0][0].text[:300],
        }
        r = results[name]
        conv = f"{r['conversion_seconds']:.0f} s" if r["conversion_seconds"] else "shipped"
        print(f"{name:<34}{r['parameters'] / 1e6:>7.1f}M params  {r['disk_bytes'] / 1e6:>7.0f} MB  conversion "
              f"{conv:>8}  {r['tokens_per_s']:>7.1f} tok/s  finished {r['finished_share']:.0%}", flush=True)
        del model
    first = results[a.models[0]]["tokens_per_s"]
    for name in a.models:
        results[name]["speed_vs_first"] = results[name]["tokens_per_s"] / first
    result = {"prompts": a.prompts, "k": a.k, "new_tokens": a.new_tokens, "batch": a.batch,
              "torch_threads": torch.get_num_threads(), "models": results}
    save("models-smoke" if a.smoke else "models", result, a.output)
    return result


if __name__ == "__main__":
    main()
