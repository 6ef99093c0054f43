"""Every private upstream symbol the trainer relies on, in one place. `tests/test_compat.py` checks each one and
fails naming the symbol when an upgrade of transformers, TRL or DeepSpeed changes it."""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset

from .quiet import no_dataset_bars


def prepare_sft_dataset(trainer: Any, dataset: Dataset, name: str) -> Dataset:
    """SFTTrainer's own preparation of (prompt, completion) rows: chat template, EOS, tokens, completion mask.

    Private: `trl.SFTTrainer._prepare_dataset`. Used so winners are tokenized exactly as SFTTrainer would.
    """
    with no_dataset_bars():
        return trainer._prepare_dataset(dataset, processing_class=trainer.processing_class, args=trainer.args,
                                        packing=False, formatting_func=None, dataset_name=name)


def num_items_in_batch(trainer: Any, batches: list[dict], device: torch.device) -> torch.Tensor | int | None:
    """The token count the loss is normalized by across gradient accumulation.

    Private: `transformers.Trainer._get_num_items_in_batch`.
    """
    return trainer._get_num_items_in_batch(batches, device)


def record_train_metric(trainer: Any, key: str, value: float) -> None:
    """A value SFTTrainer averages into its next training log line (tensorboard, wandb, ...).

    Private: `trl.SFTTrainer._metrics`.
    """
    trainer._metrics["train"][key].append(value)


def prepare_deepspeed(model: torch.nn.Module, accelerator: Any) -> Any:
    """Wrap an extra (frozen) model for DeepSpeed inference, ZeRO-3-sharded like the policy.

    `trl.models.utils.prepare_deepspeed`: not in TRL's documented API.
    """
    from trl.models.utils import prepare_deepspeed as trl_prepare_deepspeed

    return trl_prepare_deepspeed(model, accelerator)


def unset_hf_deepspeed_config() -> None:
    """Let `from_pretrained` load a plain, unsharded copy after a DeepSpeed run.

    `transformers.integrations.deepspeed.unset_hf_deepspeed_config`: not in transformers' documented API.
    """
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config as unset

    unset()
