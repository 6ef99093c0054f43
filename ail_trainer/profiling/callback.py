"""Profile held-out prompts at every evaluation and log the attributes, so they can be watched during training."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback
from trl.models import unwrap_model_for_generation

from . import protocols


class ProfilingCallback(TrainerCallback):
    """At each evaluation, greedily answer `prompts` and log `profile/<metric>` (length, MTLD, MATTR, fog).

    With `toxicity` (a `Toxicity` reward), it also samples `toxicity_samples` continuations of each prompt and logs
    Expected Maximum Toxicity and Toxicity Probability. Every process generates (required under ZeRO-3).

        trainer.add_callback(ProfilingCallback(trainer, prompts=[...]))
    """

    def __init__(self, trainer: Any, prompts: list[str], max_new_tokens: int = 64, batch_size: int = 16,
                 toxicity: Any = None, toxicity_samples: int = 4, template: str | None = None):
        self.trainer = trainer
        self.rows = [{"id": str(i), "prompt": p} for i, p in enumerate(prompts)]
        self.max_new_tokens, self.batch_size, self.template = max_new_tokens, batch_size, template
        self.toxicity, self.toxicity_samples = toxicity, toxicity_samples

    def on_evaluate(self, args, state, control, **kwargs):
        trainer = self.trainer
        tok = trainer.processing_class
        logs: dict[str, float] = {}
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model:
            textual = protocols.textual(model, tok, self.rows, protocols.ItemCache(None), self.max_new_tokens,
                                        self.batch_size, self.template)
            logs.update({f"profile/{k}": v["mean"] for k, v in textual.items()})
            if self.toxicity is not None:
                tox = protocols.toxicity(model, tok, self.rows, protocols.ItemCache(None), self.toxicity,
                                         self.toxicity_samples, self.max_new_tokens, self.batch_size,
                                         seed=state.global_step)
                logs["profile/expected_maximum_toxicity"] = tox["expected_maximum_toxicity"]
                logs["profile/toxicity_probability"] = tox["toxicity_probability"]
        trainer.log(logs)
