"""Skipping an optimizer update that has no winner tokens on any process, as if it did not happen.

The trainer runs no forward or backward for such an update (`ActiveInheritanceTrainer.training_step`); here the
optimizer's and the LR scheduler's `step()` are made skippable, so parameters, optimizer state and the schedule's
learning-rate sequence are untouched. Under DeepSpeed the engine steps inside backward, which never runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback


class SkippableStep:
    """An optimizer or LR scheduler whose `step()` does nothing while `skip()` is true; all else is forwarded."""

    def __init__(self, inner: Any, skip: Callable[[], bool]):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_skip", skip)

    def step(self, *args, **kwargs):
        if not self._skip():
            return self._inner.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __setattr__(self, name, value):
        setattr(self._inner, name, value)


def unwrap_skippable(obj: Any) -> Any:
    """The optimizer or scheduler inside a `SkippableStep` (anything else as it is)."""
    return obj._inner if isinstance(obj, SkippableStep) else obj


class SkipEmptyUpdates(TrainerCallback):
    """Once the optimizer and scheduler exist, make their `step()` skippable for updates without winner tokens."""

    def __init__(self, trainer: Any):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        t = self.trainer
        if t.is_deepspeed_enabled:  # DeepSpeed steps inside backward, which a skipped update never calls
            return
        skip = lambda: t._skip_update
        if not isinstance(t.optimizer, SkippableStep):
            t.optimizer = SkippableStep(t.optimizer, skip)
        if hasattr(t.lr_scheduler, "get_last_lr") and not isinstance(t.lr_scheduler, SkippableStep):
            t.lr_scheduler = SkippableStep(t.lr_scheduler, skip)
