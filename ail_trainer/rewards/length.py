"""Length reward in model tokens, words or characters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Reward

UNITS = ("tokens", "words", "chars")


class Length(Reward):
    """Completion length. `maximize=False` rewards shorter completions (returns minus the length).

    In `tokens`, the length is `len(completion_ids)`, the trainer's own tokenization. Called outside the
    trainer (no `completion_ids`), it tokenizes with `tokenizer` (a path, hub id or tokenizer object).
    """

    name = "length"

    def __init__(self, unit: str = "tokens", maximize: bool = True, tokenizer: Any = None):
        if unit not in UNITS:
            raise ValueError(f"Reward 'length': unit must be one of {UNITS}, got {unit!r}.")
        self.unit = unit
        self.maximize = maximize
        self.tokenizer = tokenizer

    def _tokenizer(self):
        if isinstance(self.tokenizer, str):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer)
        return self.tokenizer

    def score(self, texts: list[str], completion_ids: Sequence[Sequence[int]] | None = None, **kwargs: Any):
        if self.unit == "chars":
            lengths = [len(t) for t in texts]
        elif self.unit == "words":
            lengths = [len(t.split()) for t in texts]
        elif completion_ids is not None:
            lengths = [len(ids) for ids in completion_ids]
        elif self.tokenizer is not None:
            tok = self._tokenizer()
            lengths = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        else:
            raise ValueError(
                "Reward 'length' with unit='tokens' needs `completion_ids` (the trainer passes them) or a "
                "`tokenizer` option; or use unit='words' or unit='chars'."
            )
        sign = 1.0 if self.maximize else -1.0
        return [sign * n for n in lengths]
