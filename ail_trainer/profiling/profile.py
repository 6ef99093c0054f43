"""Profile a model or a set of texts with any of the protocols; results cached per item under `cache_dir`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..rewards import Toxicity
from . import protocols
from .data import load_rows

MODEL_PROTOCOLS = ("textual", "toxicity", "calibration", "bias")
TEXT_PROTOCOLS = ("textual", "toxicity")


@dataclass
class ProfileOptions:
    protocols: tuple[str, ...] = MODEL_PROTOCOLS
    instructions: str = "builtin:instructions"
    toxicity_prompts: str = "builtin:toxicity"
    calibration_items: str = "builtin:calibration"
    bbq_items: str = "builtin:bbq"
    max_prompts: int | None = None
    max_new_tokens: int = 256
    toxicity_samples: int = 25
    toxicity_new_tokens: int = 32
    batch_size: int = 16
    template: str | None = None
    toxicity: dict[str, Any] = field(default_factory=lambda: {"backend": "detoxify"})
    device: str | None = None
    toxicity_judge: bool = True  # ToxBlock's BiLSTM beside the toxicity scorer
    fluency_judge: str | None = None  # a causal LM whose NLL of each textual answer is reported

    def scorer(self) -> Toxicity:
        return Toxicity(**self.toxicity)

    def toxicity_judge_fn(self):
        from ..evaluation import ToxBlockJudge

        return ToxBlockJudge() if self.toxicity_judge else None

    def fluency_judge_fn(self):
        from ..evaluation import FluencyJudge

        return FluencyJudge(self.fluency_judge) if self.fluency_judge else None


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def profile_model(model_path: str, options: ProfileOptions, cache_dir: Path | None, name: str) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype="auto").to(device).eval()
    return profile_loaded(model, tok, options, cache_dir, name)


def profile_loaded(model, tok, options: ProfileOptions, cache_dir: Path | None, name: str) -> dict:
    cache = lambda protocol: protocols.ItemCache(cache_dir / slug(name) / f"{protocol}.jsonl" if cache_dir else None)
    out: dict[str, Any] = {}
    n = options.max_prompts
    for protocol in options.protocols:
        if protocol == "textual":
            rows = load_rows(options.instructions, "textual", limit=n)
            out["textual"] = protocols.textual(model, tok, rows, cache("textual"), options.max_new_tokens,
                                               options.batch_size, options.template, options.fluency_judge_fn(),
                                               cache("fluency"))
        elif protocol == "toxicity":
            rows = load_rows(options.toxicity_prompts, "toxicity", limit=n)
            out["toxicity"] = protocols.toxicity(model, tok, rows, cache("toxicity"), options.scorer(),
                                                 options.toxicity_samples, options.toxicity_new_tokens,
                                                 max(1, options.batch_size // 4),
                                                 judge=options.toxicity_judge_fn())
        elif protocol == "calibration":
            rows = load_rows(options.calibration_items, "calibration", limit=n)
            out["calibration"] = protocols.calibration(model, tok, rows, cache("calibration"), options.batch_size)
        elif protocol == "bias":
            rows = load_rows(options.bbq_items, "bias", limit=n)
            out["bias"] = protocols.bias(model, tok, rows, cache("bias"), options.batch_size)
        else:
            raise ValueError(f"Unknown protocol {protocol!r}; choose from {MODEL_PROTOCOLS}.")
    return out


def profile_texts(source: str, options: ProfileOptions, cache_dir: Path | None, name: str) -> dict:
    """Text-level profile of a dataset (e.g. a teacher's synthetic data or the trainer's round records)."""
    rows = load_rows(source, "texts", limit=options.max_prompts)
    cache = lambda protocol: protocols.ItemCache(cache_dir / slug(name) / f"{protocol}.jsonl" if cache_dir else None)
    out: dict[str, Any] = {}
    if "textual" in options.protocols:
        out["textual"] = protocols.textual_of_texts(rows, cache("texts-textual"))
    if "toxicity" in options.protocols:
        out["toxicity"] = protocols.toxicity_of_texts(rows, cache("texts-toxicity"), options.scorer(),
                                                      options.toxicity_judge_fn())
    return out
