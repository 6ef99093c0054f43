"""An independent fluency judge: each answer's mean per-token negative log-likelihood under a causal LM that neither
trained nor sampled it (by default Gemma 3 270M, a base model), given its question in the paper's base-model
template. Lower is more fluent; word salad scores high."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..rewards.base import completion_texts
from ..rewards.likelihood import Likelihood
from ..templates import QUESTION_ANSWER

DEFAULT_JUDGE = "builtin:gemma3-270m"


class FluencyJudge:
    """`judge(prompts, completions)` → each completion's mean per-token NLL (None for an empty one).

    A conversational prompt is rendered with `template` (the paper's "### Question: … ### Answer: " by default, as a
    base model reads it); a string prompt is a text to continue and is read as it is.

    Each batch puts every prompt's end in one column (prompts padded on the left, answers on the right, positions
    counted from each row's first token), so the model's head runs on the answer positions alone
    (`logits_to_keep`): with a large vocabulary the head and its softmax are most of the cost."""

    name = "judge_nll"

    def __init__(self, model: Any = DEFAULT_JUDGE, template: str = QUESTION_ANSWER, batch_size: int = 8,
                 max_length: int | None = 512, **model_init_kwargs: Any):
        self.scorer = Likelihood(model, batch_size=batch_size, max_length=max_length, **model_init_kwargs)
        self.template = template

    def render(self, prompt: Any) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.scorer.tokenizer.apply_chat_template(list(prompt), chat_template=self.template, tokenize=False)

    def __call__(self, prompts: Sequence, completions: Sequence) -> list[float | None]:
        texts = completion_texts(self.name, completions, prompts)
        pairs = self.scorer.inputs([self.render(p) for p in prompts], texts)
        model = self.scorer.model
        device = self.scorer.device or next(model.parameters()).device
        out: list[float | None] = []
        for start in range(0, len(pairs), self.scorer.batch_size):
            out += self._batch(pairs[start : start + self.scorer.batch_size], model, device)
        return out

    @torch.no_grad()
    def _batch(self, pairs: list[tuple[list[int], list[int]]], model: Any, device: torch.device) -> list[float | None]:
        # with no prompt, the first answer token has nothing to be read from: it becomes the prompt
        pairs = [(c[:1], c[1:]) if not p else (p, c) for p, c in pairs]
        left = max(len(p) for p, _ in pairs)
        right = max(len(c) for _, c in pairs)
        if right == 0:
            return [None] * len(pairs)
        pad = self.scorer.tokenizer.pad_token_id
        ids = [[pad] * (left - len(p)) + p + c + [pad] * (right - len(c)) for p, c in pairs]
        mask = [[0] * (left - len(p)) + [1] * (len(p) + len(c)) + [0] * (right - len(c)) for p, c in pairs]
        ids_t, mask_t = torch.tensor(ids, device=device), torch.tensor(mask, device=device)
        positions = (mask_t.cumsum(-1) - 1).clamp(min=0)
        keep = torch.arange(left - 1, left + right - 1, device=device)  # the positions that predict the answers
        logits = model(input_ids=ids_t, attention_mask=mask_t, position_ids=positions, logits_to_keep=keep).logits
        logprobs = torch.log_softmax(logits.float(), -1).gather(-1, ids_t[:, left:, None])[..., 0]
        return [-float(logprobs[row, : len(c)].mean()) if c else None for row, (_, c) in enumerate(pairs)]
