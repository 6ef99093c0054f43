"""Every private upstream symbol the trainer relies on, and every difference between the supported releases of
transformers, TRL and Accelerate, in one place. `tests/test_compat.py` checks each one and fails naming the symbol
when an upgrade changes it; CI runs it on the newest and on the lowest supported set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


# Activation checkpointing was renamed in transformers 5.18: `activation_checkpointing*` on the training arguments and
# the model; 5.17 has only the `gradient_checkpointing*` names, with the same meaning and the same `every_n_layers`
# and `offload` keys. The functions below pick whichever the installed release has.
def _checkpointing_prefix() -> str:
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


CHECKPOINTING_ARG = _checkpointing_prefix()  # the training-argument name of the installed transformers


def checkpointing_is_on(model: Any) -> bool:
    """Whether activation (gradient) checkpointing is enabled on `model`."""
    return bool(getattr(model, f"is_{CHECKPOINTING_ARG}", False))


def checkpointing_off(model: Any) -> None:
    getattr(model, f"{CHECKPOINTING_ARG}_disable")()


def checkpointing_on(model: Any, args: Any) -> None:
    """Enable checkpointing with the run's own settings: `every_n_layers`, `offload` and the checkpoint kwargs."""
    kwargs = dict(getattr(args, f"{CHECKPOINTING_ARG}_kwargs", None) or {})
    every_n_layers, offload = kwargs.pop("every_n_layers", 1), kwargs.pop("offload", False)
    getattr(model, f"{CHECKPOINTING_ARG}_enable")(**{f"{CHECKPOINTING_ARG}_kwargs": kwargs or None},
                                                   every_n_layers=every_n_layers, offload=offload)


def resolve_checkpointing_alias(args: Any) -> None:
    """SFTConfig sets the deprecated `gradient_checkpointing` by default, so transformers (5.18+) warns on every
    config. Where the user left `activation_checkpointing` unset, it takes that value here, as transformers itself
    would, without the warning. Older transformers have only the old name, and nothing changes."""
    if CHECKPOINTING_ARG == "activation_checkpointing" and args.activation_checkpointing is None:
        args.activation_checkpointing = args.gradient_checkpointing
        if getattr(args, "activation_checkpointing_kwargs", None) is None:
            args.activation_checkpointing_kwargs = args.gradient_checkpointing_kwargs


@contextmanager
def vllm_awake(engine: Any) -> Iterator[None]:
    """A colocated vLLM engine with its weights and KV cache in memory for one `generate`, asleep again after, as
    `VLLMGeneration.generate` does in sleep mode (level 2 discards the weights, so they are pushed again).

    Private: `trl.generation.vllm_generation.VLLMGeneration._llm_weights_sleeping`.
    """
    if not engine.enable_sleep_mode:
        yield
        return
    if engine._llm_weights_sleeping:
        engine.sync_weights()
    engine.llm.wake_up(tags=["kv_cache"])
    try:
        yield
    finally:
        engine.llm.sleep(level=2)
        engine._llm_weights_sleeping = True


# transformers 5.24 renamed the key-value cache of model inputs and outputs from `past_key_values` to `cache` (the old
# name still works there, with a warning on every run); 5.17 to 5.23 know only `past_key_values`.
def _cache_name() -> str:
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


CACHE_NAME = _cache_name()


def output_cache(output: Any) -> Any:
    """The key-value cache a forward returned."""
    return getattr(output, CACHE_NAME)


def cache_kwargs(cache: Any) -> dict[str, Any]:
    """The keyword that passes a key-value cache to a forward or to `generate`."""
    return {CACHE_NAME: cache}
