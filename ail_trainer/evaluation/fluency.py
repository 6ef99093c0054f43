"""An independent fluency judge: each answer's mean per-token negative log-likelihood under a causal LM that neither
trained nor sampled it (by default Gemma 3 270M, a base model), given its question in the paper's base-model
template. Lower is more fluent; word salad scores high."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..rewards.base import completion_texts
from ..rewards.likelihood import Likelihood
from ..templates import QUESTION_ANSWER

DEFAULT_JUDGE = "builtin:gemma3-270m"


class FluencyJudge:
    """`judge(prompts, completions)` → each completion's mean per-token NLL (None for an empty one).

    A conversational prompt is rendered with `template` (the paper's "### Question: … ### Answer: " by default, as a
    base model reads it); a string prompt is a text to continue and is read as it is."""

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
        scores = self.scorer(prompts=[self.render(p) for p in prompts], completions=texts)
        return [None if s is None else -s for s in scores]
