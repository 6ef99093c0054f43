"""Fluency as a reward: each completion's mean per-token log-probability under a causal language model, given its
prompt. Text that reads like the scoring model's own scores high; word salad scores low."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from .base import completion_texts
from .model import RewardModel


class Likelihood(RewardModel):
    """Mean log-probability per completion token under `model` (a hub id, local path, `builtin:` name or loaded
    causal LM), given the prompt: conversational prompts through the tokenizer's chat template with a generation
    prompt, as the policy samples them. Usually the model being trained, so it keeps selection near what the model
    already writes fluently (e.g. with `reward_constraints` or a weight beside MTLD). An empty completion is left
    unscored (None), so it cannot win."""

    def __init__(self, model: str | PreTrainedModel | None = None, tokenizer: Any = None, batch_size: int = 8,
                 max_length: int | None = None, trust_remote_code: bool = False, **model_init_kwargs: Any):
        if model is None:
            raise ValueError(
                "The 'likelihood' reward needs `model`, the causal LM whose likelihood scores fluency, e.g. "
                "{'name': 'likelihood', 'model': 'builtin:smollm2-135m-instruct'} (usually the model you train)."
            )
        super().__init__(model, tokenizer, batch_size, max_length, trust_remote_code, **model_init_kwargs)

    @staticmethod
    def load(source: str, **kwargs: Any) -> PreTrainedModel:
        return AutoModelForCausalLM.from_pretrained(source, **kwargs)

    @staticmethod
    def default_name(source: str) -> str:
        return "likelihood"

    def inputs(self, prompts: Sequence | None, completions: Sequence) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, completion ids) per completion."""
        texts = completion_texts(self.name, completions, prompts)
        tok = self.tokenizer
        if prompts is None:
            prefixes = [[tok.bos_token_id] if tok.bos_token_id is not None else []] * len(texts)
        elif prompts and not isinstance(prompts[0], str):
            if getattr(tok, "chat_template", None) is None:
                raise ValueError(
                    f"Reward '{self.name}' has no chat template, but the prompts are conversational. Pass "
                    "`reward_processing_classes` with a tokenizer that has one, or give plain-string prompts."
                )
            prefixes = [list(tok.apply_chat_template(list(p), add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)["input_ids"]) for p in prompts]
        else:
            prefixes = [list(ids) for ids in tok(list(prompts))["input_ids"]]
        out = []
        for prefix, text in zip(prefixes, texts):
            ids = list(tok(text, add_special_tokens=False)["input_ids"])
            if self.max_length is not None:  # cut the prompt's start first, then the completion's end
                ids = ids[: max(self.max_length - 1, 1)]
                prefix = prefix[max(len(prefix) - (self.max_length - len(ids)), 0):]
            out.append((prefix, ids))
        return out

    def score_batch(self, pairs: list[tuple[list[int], list[int]]], device: torch.device) -> list[float | None]:
        rows = [p + c for p, c in pairs]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        logprobs = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        token_logprobs = logprobs.gather(-1, ids[:, 1:, None])[..., 0]
        scores: list[float | None] = []
        for i, (prefix, completion) in enumerate(pairs):
            start = max(len(prefix), 1)  # with no prefix the first token has nothing to be predicted from
            picked = token_logprobs[i, start - 1 : len(prefix) + len(completion) - 1]
            scores.append(float(picked.mean()) if picked.numel() else None)
        return scores
