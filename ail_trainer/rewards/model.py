"""Reward models as scorers, taken as `GRPOTrainer` takes them: a sequence-classification model scores each
prompt + completion, and the reward is `logits[:, 0]`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from ..teachers import place
from .base import completion_texts


def looks_like_model(spec: str) -> bool:
    """A filesystem path (existing or not: a missing one then fails with a clear error), or a hub id `org/name`."""
    return spec.startswith(("/", "./", "../", "~")) or os.path.isdir(spec) or spec.count("/") == 1


class RewardModel:
    """Scores prompt + completion with a sequence-classification model (`num_labels=1`).

    `model` is a hub id, a local path or a loaded `PreTrainedModel`; `tokenizer` defaults to the model's own, and a
    missing pad token falls back to EOS. Conversational prompts are rendered with the tokenizer's chat template.
    The trainer places it on its device for scoring and, with `offload_teachers`, back on the CPU between rounds.
    """

    def __init__(self, model: str | PreTrainedModel, tokenizer: Any = None, batch_size: int = 16,
                 max_length: int | None = None, trust_remote_code: bool = False, **model_init_kwargs: Any):
        if isinstance(model, str):
            from ..checks import check_model_source

            source = check_model_source(model, "Reward model", trust_remote_code)
            model = self.load(source, trust_remote_code=trust_remote_code, **model_init_kwargs)
        if not isinstance(model, PreTrainedModel):
            raise TypeError(f"A reward model must be a hub id, a local path or a PreTrainedModel, got "
                            f"{type(model).__name__}.")
        self.model = model.eval().requires_grad_(False)
        source = model.config._name_or_path or type(model).__name__
        self.name = self.default_name(source)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model.config.pad_token_id = tokenizer.pad_token_id
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.device: torch.device | None = None  # set by the trainer
        self.offload = False

    @staticmethod
    def load(source: str, **kwargs: Any) -> PreTrainedModel:
        return AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, **kwargs)

    @staticmethod
    def default_name(source: str) -> str:
        return os.path.basename(os.path.normpath(source)) or source

    @property
    def __name__(self) -> str:
        return self.name

    def texts(self, prompts: Sequence | None, completions: Sequence) -> list[str]:
        """What the model reads: the chat template over prompt + completion messages, or prompt + completion."""
        if prompts is None:
            return completion_texts(self.name, completions)
        if len(prompts) != len(completions):
            raise ValueError(f"Reward '{self.name}': got {len(prompts)} prompts but {len(completions)} completions.")
        if prompts and not isinstance(prompts[0], str):
            if getattr(self.tokenizer, "chat_template", None) is None:
                raise ValueError(
                    f"Reward model '{self.name}' has no chat template, but the prompts are conversational. Pass "
                    "`reward_processing_classes` with a tokenizer that has one, or give plain-string prompts."
                )
            return [self.tokenizer.apply_chat_template(list(p) + list(c), tokenize=False)
                    for p, c in zip(prompts, completions)]
        return [p + c for p, c in zip(prompts, completion_texts(self.name, completions))]

    @torch.no_grad()
    def __call__(self, prompts: Sequence | None = None, completions: Sequence | None = None,
                 **kwargs: Any) -> list[float]:
        inputs = self.inputs(prompts, completions)
        device = self.device or next(self.model.parameters()).device
        place(self.model, device)
        scores: list[float] = []
        try:
            for start in range(0, len(inputs), self.batch_size):
                scores += self.score_batch(inputs[start : start + self.batch_size], device)
        finally:
            if self.offload:
                place(self.model, torch.device("cpu"))
        return scores

    def inputs(self, prompts: Sequence | None, completions: Sequence) -> list:
        return self.texts(prompts, completions)

    def score_batch(self, texts: list[str], device: torch.device) -> list[float]:
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="right",
                               add_special_tokens=False, truncation=self.max_length is not None,
                               max_length=self.max_length)
        return self.model(**batch.to(device)).logits[:, 0].float().tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model.config._name_or_path!r})"
