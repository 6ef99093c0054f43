"""Our sampler (`ail_trainer.generation.generate`: shared prefill, compacting finished rows) against plain
`model.generate`, on one model and device, interleaved: each path is warmed up, then they alternate `--repeats`
times, so drift in clocks or load hits both. Figures are completion tokens per second, and the ratio ours / generate.

    python benchmarks/bench_sampler.py --model builtin:smollm2-135m-instruct --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ail_trainer.builtin import builtin_model_path, is_builtin
from ail_trainer.generation import SamplingSettings, build_generation_config, generate, render_prompts
from ail_trainer.prompts import load_prompts


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_ours(model, tok, ids, k, config, batch) -> int:
    out = generate(model, tok, ids, k, config, batch, show_progress=False)
    return sum(len(g.ids) for row in out for g in row)


def run_generate(model, tok, ids, k, config, batch) -> int:
    tokens = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        width = max(map(len, chunk))
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk], device=model.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=model.device)
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                 num_return_sequences=k)
        completions = out[:, width:]
        stops = set(config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id])
        for row in completions.tolist():
            tokens += next((i for i, t in enumerate(row) if t in stops), len(row))
    return tokens


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16" if torch.cuda.is_available() else "float32")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output")
    a = parser.parse_args(argv)
    path = builtin_model_path(a.model) if is_builtin(a.model) else a.model
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, a.dtype)).to(a.device).eval()
    texts = [[{"role": "user", "content": r["prompt"]}] for r in load_prompts("test")][: a.prompts]
    ids = render_prompts(texts, tok, conversational=tok.chat_template is not None) if tok.chat_template else \
        [list(x) for x in tok([m[0]["content"] for m in texts])["input_ids"]]
    config = build_generation_config(SamplingSettings(a.new_tokens, top_p=0.9), model, tok)
    paths = {"ours": run_ours, "generate": run_generate}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for fn in paths.values():  # warm-up, not timed
        fn(model, tok, ids[: a.batch], a.k, config, a.batch)
    for repeat in range(a.repeats):
        for name, fn in paths.items():
            torch.manual_seed(repeat)
            sync(a.device)
            start = time.perf_counter()
            tokens = fn(model, tok, ids, a.k, config, a.batch)
            sync(a.device)
            rates[name].append(tokens / (time.perf_counter() - start))
    result = {
        "model": a.model, "device": a.device, "device_name": torch.cuda.get_device_name() if
        a.device.startswith("cuda") else "cpu", "dtype": a.dtype, "prompts": len(ids), "k": a.k,
        "new_tokens": a.new_tokens, "batch": a.batch, "repeats": a.repeats,
        "tokens_per_s": {n: [round(r, 1) for r in v] for n, v in rates.items()},
        "median_ratio_ours_over_generate": round(statistics.median(o / g for o, g in zip(rates["ours"],
                                                                                        rates["generate"])), 3),
    }
    print(json.dumps(result, indent=1))
    if a.output:
        with open(a.output, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
