"""Shared set-up for the benchmarks: a ~10M-parameter Llama built offline, prompts, timing and output helpers."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def interleaved(paths: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each path, alternating, after one untimed call of each."""
    for fn in paths.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return seconds


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


def conditions_parser(doc: str, default_output: str, names: list[str]) -> argparse.ArgumentParser:
    """The command line the condition benchmarks share (`shared_pool.py`, `toxicity_pool.py`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="The toy model, a few prompts, one seed.")
    parser.add_argument("--output", default=None, help=f"Results folder (default benchmarks/results/{default_output}).")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--conditions", nargs="+", default=None, choices=names)
    parser.add_argument("--summary-only", action="store_true", help="Summarize the finished runs; run nothing.")
    return parser


def run_conditions(conditions: list, seeds: tuple, runs_dir: Path, prepare: Callable[[int], Any],
                   run_one: Callable[[Any, int, Any], dict]) -> dict[tuple[str, int], dict]:
    """Each seed's `prepare(seed)` (its pool), then each condition's `run_one(cond, seed, prepared)`, written to
    `runs_dir/<name>-seed<s>.json` as it finishes and skipped when that file exists, so a killed job resumes. Returns
    every finished run of `seeds` in `runs_dir`, keyed by (condition, seed)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        prepared = None
        for cond in conditions:
            path = runs_dir / f"{cond.name}-seed{seed}.json"
            if path.exists():
                continue  # finished before an interruption
            if prepared is None:
                prepared = prepare(seed)
            result = run_one(cond, seed, prepared)
            path.write_text(json.dumps(result, indent=1))
            print(f"{cond.name} seed {seed}: " + ", ".join(f"{a} {v:.3g}" for a, v in result["means"].items())
                  + f" (train {result['train_seconds']:.0f} s, eval {result['eval_seconds']:.0f} s)", flush=True)
    return {(r["condition"], r["seed"]): r for p in sorted(runs_dir.glob("*.json"))
            for r in [json.loads(p.read_text())] if r["seed"] in seeds}
