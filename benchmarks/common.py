"""Shared set-up for the benchmarks: a ~10M-parameter Llama built offline, prompts, timing and output helpers."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
CACHE = Path(os.environ.get("AIL_BENCH_CACHE", ROOT / "benchmarks" / ".cache"))
RESULTS = ROOT / "benchmarks" / "results"

# hidden 384, 6 layers: 14.4M parameters with the 512-token vocabulary; compute dominates on a CPU
BENCH_MODEL = dict(arch="llama", hidden_size=384, num_layers=6, num_heads=6, vocab_size=512)
SMOKE_MODEL = dict(arch="llama", hidden_size=64, num_layers=2, num_heads=4, vocab_size=512)


def cached_tiny_model(name: str, **spec) -> str:
    """A tiny model built once under `CACHE/name` (file-locked, atomic: safe when processes race)."""
    from ail_trainer.cache import materialize
    from ail_trainer.testing import build_tiny_model

    return str(materialize(CACHE / name, lambda tmp: build_tiny_model(tmp, overwrite=True, **spec), spec=spec))


def model_path(smoke: bool = False) -> str:
    return cached_tiny_model("smoke" if smoke else "llama-10m", **(SMOKE_MODEL if smoke else BENCH_MODEL))


def load(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def prompts(n: int, long: bool = False) -> list[str]:
    """`n` built-in prompts (cycled); `long` prefixes each with ~200 tokens of context."""
    from ail_trainer.prompts import load_prompts

    rows = load_prompts("all")
    out = [rows[i % len(rows)]["prompt"] for i in range(n)]
    if long:
        context = " ".join(r["completion"].strip() for r in rows[:24])
        out = [f"Context: {context}\nQuestion: {p}" for p in out]
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def save(name: str, result: dict, output: str | None = None) -> Path:
    path = Path(output) if output else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2))
    return path


def quiet() -> None:
    import logging

    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    logging.getLogger("deepspeed").setLevel(logging.ERROR)
