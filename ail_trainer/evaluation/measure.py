"""Sample a model's answers to a prompt set under one decoding, and score them with the selector's metric and the
judges that did not select. Answers are plain data (`Answers`), written to JSON, so a measurement resumes."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Decoding:
    """A held-out decoding: nucleus `top_p`, `temperature`, and the answer's token cap."""

    top_p: float = 1.0
    temperature: float = 1.0
    max_new_tokens: int = 128

    @property
    def label(self) -> str:
        return f"top_p{self.top_p:g}_T{self.temperature:g}_cap{self.max_new_tokens}"


@dataclass
class Answers:
    """`samples` answers per prompt from `model` under `decoding`; `seed` seeds each (prompt, sample)'s own random
    stream, so two models sampled with one seed share their random numbers."""

    model: str
    decoding: Decoding
    samples: int
    seed: int
    texts: list[list[str]]
    tokens: list[list[int]]
    finished: list[list[bool]]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Answers:
        data = json.loads(path.read_text())
        return cls(**{**data, "decoding": Decoding(**data["decoding"])})


def sample_answers(model_path: str, prompts: Sequence[Any], decoding: Decoding, samples: int, seed: int,
                   batch_size: int = 32, device: str = "cpu") -> Answers:
    """Answers in float32, with common random numbers (`generation.generate(noise_seed=)`); conversational prompts
    through the model's chat template, strings as text to continue."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..generation import SamplingSettings, build_generation_config, generate, render_prompts

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to(device)
    conversational = bool(prompts) and not isinstance(prompts[0], str)
    ids = render_prompts(list(prompts), tok, conversational)
    settings = SamplingSettings(max_new_tokens=decoding.max_new_tokens, temperature=decoding.temperature,
                                top_p=decoding.top_p)
    out = generate(model, tok, ids, samples, build_generation_config(settings, model, tok),
                   max(1, batch_size // samples), desc=f"Sampling {decoding.label}", noise_seed=seed)
    return Answers(model_path, decoding, samples, seed, [[g.text for g in row] for row in out],
                   [[len(g.ids) for g in row] for row in out], [[g.finished for g in row] for row in out])


Scorer = Callable[[list[Any], list[str]], list[float | None]]


def score_answers(answers: Answers, prompts: Sequence[Any], scorers: dict[str, Scorer]) -> dict[str, np.ndarray]:
    """Each metric per prompt, the mean over its samples: `tokens`, `capped` (the share cut at the cap) and every
    scorer's value (`scorer(prompts, texts)`; None is left out of the mean)."""
    flat_prompts = [p for p, row in zip(prompts, answers.texts) for _ in row]
    flat = [t for row in answers.texts for t in row]

    def per_prompt(values: np.ndarray) -> np.ndarray:
        rows = values.reshape(len(answers.texts), answers.samples)
        with warnings.catch_warnings():  # a prompt with no scored sample is NaN, without a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(rows, axis=1)

    result = {"tokens": per_prompt(np.array([t for row in answers.tokens for t in row], dtype=float)),
              "capped": per_prompt(np.array([not f for row in answers.finished for f in row], dtype=float))}
    for name, scorer in scorers.items():
        values = scorer(flat_prompts, flat)
        result[name] = per_prompt(np.array([np.nan if v is None else v for v in values], dtype=float))
    return result


def selector_scorer(name: str) -> Scorer:
    """A reward of the registry (e.g. 'mtld', 'toxicity') as a scorer of plain texts."""
    from ..rewards.registry import resolve_reward

    reward = resolve_reward(name)
    return lambda prompts, texts: list(reward(prompts=prompts, completions=texts))
