"""Generation engines on a real model, EOS-heavy sampling: our default path, raw `model.generate`, continuous
batching, and a teacher behind an OpenAI-compatible endpoint.

    python benchmarks/bench_engines.py                      # SmolLM2-135M-Instruct, 64 prompts, k=8, 256 tokens
    python benchmarks/bench_engines.py --prompts 16 --k 4 --new-tokens 128
    python benchmarks/bench_engines.py --smoke              # the toy model, a few prompts (CI)

Unlike `bench_generation.py`, samples stop at EOS, as in training: a static batch keeps a finished sample's slot
until its longest neighbour ends, which continuous batching does not. Every path samples the same built-in held-out
instructions (chat template, top_p 0.9, temperature 1.0) in this process, one after another; figures are completion
tokens (up to EOS) per second of wall time.
- ours: `ail_trainer.generation.generate` (length-sorted batches of `--batch` prompts, shared prefill, finished
  samples leave the batch), at each of `--batch`; the first is the trainer's default and the reported ratio's;
- `--static`: ours with compaction off (each batch through `model.generate`), the path before compaction;
- raw `model.generate` with `num_return_sequences=k`, at each of `--raw-batches`; the best is the baseline;
- continuous batching: transformers' `generate_batch` (paged attention), all requests at once;
- `--endpoint`: the same model behind `transformers serve` on 127.0.0.1, through the endpoint teacher source.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from common import quiet, save


def chat_prompts(n: int) -> list:
    from ail_trainer.prompts import as_chat, load_instructions

    rows = load_instructions("test")
    return [as_chat(rows[i % len(rows)]["prompt"]) for i in range(n)]


def count(seqs: list[list[int]], stop: set[int]) -> int:
    """Completion tokens up to (not counting) the first stop token."""
    return sum(next((t for t, tok in enumerate(s) if tok in stop), len(s)) for s in seqs)


def timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - start, tokens


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="builtin:smollm2-135m-instruct")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--batch", type=int, nargs="+", default=[16],
                   help="prompts per batch on our path; the first is the ratio's (the trainer's default is 16)")
    p.add_argument("--raw-batches", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--static", action="store_true", help="also time our path with compaction off")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--no-continuous", action="store_true")
    p.add_argument("--endpoint", action="store_true", help="also time a transformers-serve endpoint teacher")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--output", default=None)
    a = p.parse_args(argv)
    if a.smoke:
        a.model, a.prompts, a.k, a.new_tokens, a.batch, a.raw_batches = "builtin:tiny-chat", 4, 2, 8, [2], [2, 4]
        a.static = True
    quiet()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ail_trainer.builtin import builtin_model_path, is_builtin
    from ail_trainer.generation import SamplingSettings, build_generation_config, eos_ids, generate, render_prompts

    path = builtin_model_path(a.model) if is_builtin(a.model) else a.model
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, a.dtype)).to(a.device).eval()
    prompts = chat_prompts(a.prompts)
    ids = render_prompts(prompts, tok, True)
    settings = SamplingSettings(a.new_tokens, temperature=1.0, top_p=0.9)
    config = build_generation_config(settings, model, tok)
    stop = set(eos_ids(model, tok))
    runs: dict[str, dict] = {}

    def record(name, seconds, tokens):
        runs[name] = {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}
        print(f"{name:<32}{tokens:>8} tokens {seconds:>8.1f} s {tokens / seconds:>9.1f} tok/s", flush=True)

    warm = build_generation_config(SamplingSettings(4, temperature=1.0, top_p=0.9), model, tok)
    for compact in (True, False):  # warm-up: first-call costs (kernel loading, allocator) are not a path's speed
        generate(model, tok, ids[:2], 2, warm, 2, show_progress=False, compact=compact)

    def ours(batch, compact=True):
        def run():
            torch.manual_seed(0)
            out = generate(model, tok, ids, a.k, config, batch, show_progress=False, compact=compact)
            sync()
            return sum(len(g.ids) for s in out for g in s)
        return run

    def sync():
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    for batch in a.batch:
        record(f"ours, batch {batch}", *timed(ours(batch)))
    if a.static:
        record(f"ours static (compaction off), batch {a.batch[0]}", *timed(ours(a.batch[0], compact=False)))
    default = f"ours, batch {a.batch[0]}"

    def raw(batch):
        def run():
            torch.manual_seed(0)
            total = 0
            for start in range(0, len(ids), batch):
                chunk = ids[start : start + batch]
                width = max(map(len, chunk))
                pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
                input_ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk], device=a.device)
                mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk], device=a.device)
                with torch.no_grad():
                    out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                         num_return_sequences=a.k)
                total += count(out[:, width:].tolist(), stop)  # .tolist() waits for the device
            return total
        return run

    for batch in a.raw_batches:
        record(f"raw generate, batch {batch}", *timed(raw(batch)))
    best = max((n for n in runs if n.startswith("raw")), key=lambda n: runs[n]["tokens_per_s"])

    if not a.no_continuous:
        def continuous():
            torch.manual_seed(0)
            cb_config = build_generation_config(settings, model, tok)
            cb_config.num_return_sequences = a.k
            out = model.generate_batch(inputs=ids, generation_config=cb_config)
            sync()
            return count([r.generated_tokens for r in out.values()], stop)

        try:
            record("continuous batching", *timed(continuous))
        except Exception as err:  # reported, not hidden
            runs["continuous batching"] = {"error": f"{type(err).__name__}: {err}"}
            print(f"continuous batching failed: {err}", flush=True)

    if a.endpoint:
        failed = endpoint_run(path, prompts, a, tok, record)
        runs["endpoint"]["failed_requests"] = failed

    ours_rate = runs[default]["tokens_per_s"]
    result = {"model": a.model, "prompts": a.prompts, "k": a.k, "new_tokens": a.new_tokens, "batch": a.batch,
              "device": device_name(a.device), "dtype": a.dtype, "torch_threads": torch.get_num_threads(),
              "runs": runs, "ours": default, "raw_best": best,
              "ours_over_raw_best": ours_rate / runs[best]["tokens_per_s"]}
    static = [n for n in runs if n.startswith("ours static")]
    if static:
        result["ours_over_static"] = ours_rate / runs[static[0]]["tokens_per_s"]
    if "tokens_per_s" in runs.get("continuous batching", {}):
        result["continuous_over_ours"] = runs["continuous batching"]["tokens_per_s"] / ours_rate
    if "endpoint" in runs:
        result["endpoint_over_in_process"] = runs["endpoint"]["tokens_per_s"] / ours_rate
    print({k: v for k, v in result.items() if "over" in k})
    save("engines-smoke" if a.smoke else "engines", result, a.output)
    return result


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"


def endpoint_run(path, prompts, a, tok, record) -> int:
    """The same prompts and k through a `transformers serve` endpoint teacher (server on this machine)."""
    import socket
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from ail_trainer.endpoint import preflight_endpoint
    from ail_trainer.generation import SamplingSettings
    from ail_trainer.sources import EndpointSource
    from ail_trainer.teachers import Endpoint

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Path(sys.executable).parent / "transformers"
    proc = subprocess.Popen([str(cli), "serve", path, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                             "--dtype", "float32"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", path, max_concurrency=8)
        source = EndpointSource("endpoint", endpoint, a.k, SamplingSettings(a.new_tokens, temperature=1.0, top_p=0.9),
                                lambda t: tok(t, add_special_tokens=False)["input_ids"], True,
                                preflight_endpoint(endpoint, True), show_progress=False)
        seconds, tokens = timed(lambda: sum(c.num_tokens for row in source.candidates(0, list(range(len(prompts))),
                                                                                       prompts) for c in row))
        record("endpoint", seconds, tokens)
        return sum(map(len, source.failures.values()))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
