"""The reward base class: GRPO calling convention, input validation, batching."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def completion_text(completion: Any) -> str:
    """Return the text of one completion, given as a string or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and all(isinstance(m, dict) for m in completion):
        return "".join(str(m.get("content") or "") for m in completion)
    raise TypeError(f"expected a string or a list of chat messages, got {type(completion).__name__}")


def completion_texts(name: str, completions: Any, prompts: Sequence | None = None) -> list[str]:
    """Validate a batch of completions for the reward `name` and return their texts."""
    if completions is None or isinstance(completions, (str, bytes)) or not isinstance(completions, Sequence):
        raise TypeError(
            f"Reward '{name}': `completions` must be a list of strings or of message lists, "
            f"got {type(completions).__name__}."
        )
    if prompts is not None and len(prompts) != len(completions):
        raise ValueError(
            f"Reward '{name}': got {len(prompts)} prompts but {len(completions)} completions; "
            "pass one prompt per completion (repeat each prompt for each of its candidates)."
        )
    texts = []
    for i, completion in enumerate(completions):
        if completion is None:
            raise ValueError(f"Reward '{name}': completion {i} is None; pass an empty string for an empty completion.")
        try:
            texts.append(completion_text(completion))
        except TypeError as err:
            raise TypeError(f"Reward '{name}': completion {i}: {err}.") from None
    return texts


class Reward:
    """A batched, picklable reward with TRL's GRPO calling convention.

    Subclasses implement `score(texts, completion_ids=None, **kwargs) -> list[float | None]`.
    Every reward is maximized.
    """

    name: str = "reward"

    @property
    def __name__(self) -> str:  # TRL names reward functions by `__name__`
        return self.name

    def __call__(
        self,
        prompts: Sequence | None = None,
        completions: Sequence | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        texts = completion_texts(self.name, completions, prompts)
        if completion_ids is not None and len(completion_ids) != len(texts):
            raise ValueError(
                f"Reward '{self.name}': got {len(texts)} completions but {len(completion_ids)} completion_ids."
            )
        if not texts:
            return []
        return self.score(texts, completion_ids=completion_ids, **kwargs)

    def score(self, texts: list[str], completion_ids: Sequence[Sequence[int]] | None = None, **kwargs: Any):
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


def check_reward_output(name: str, values: Any, expected: int) -> list[float | None]:
    """Validate what a reward returned: one finite number or None per completion."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise TypeError(
            f"Reward '{name}' returned {type(values).__name__}; a reward must return a list with one float "
            "(or None) per completion."
        )
    if len(values) != expected:
        raise ValueError(
            f"Reward '{name}' returned {len(values)} values for {expected} completions; "
            "a reward must return exactly one value per completion."
        )
    out: list[float | None] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError(
                f"Reward '{name}' returned {value!r} ({type(value).__name__}) for completion {i}; "
                "return a float, or None to leave the completion unscored."
            )
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            raise ValueError(
                f"Reward '{name}' returned {value} for completion {i}; return a finite float, "
                "or None to leave the completion unscored."
            )
        out.append(value)
    return out


class RewardError(ValueError):
    """A reward function failed or returned something unusable; the message names the reward."""


def call_reward(func: Any, name: str, expected: int, **kwargs: Any) -> list[float | None]:
    """Call one reward with GRPO's keyword convention and validate its output: the one place rewards are called."""
    try:
        values = func(**kwargs)
    except Exception as err:
        raise RewardError(
            f"Reward '{name}' raised {type(err).__name__}: {err}. Fix the reward function (it is called as "
            "f(prompts=, completions=, completion_ids=, trainer_state=, **columns)), or remove it from reward_funcs."
        ) from err
    return check_reward_output(name, values, expected)
