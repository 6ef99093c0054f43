"""What the trainer needs to know about the distributed set-up Accelerate chose."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from accelerate import Accelerator
from accelerate.utils import DistributedType


def is_zero3(accelerator: Accelerator) -> bool:
    plugin = accelerator.state.deepspeed_plugin
    return plugin is not None and plugin.zero_stage == 3


def is_fsdp(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type == DistributedType.FSDP


def fsdp_requested(args) -> bool:
    return bool(getattr(args, "fsdp", None)) or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def check_backend(accelerator: Accelerator, args) -> None:
    """Fail when FSDP was asked for but Accelerate set up something else (it enables FSDP only on accelerators)."""
    if fsdp_requested(args) and not is_fsdp(accelerator):
        raise ValueError(
            f"FSDP was requested (accelerate config or `fsdp=`), but Accelerate set up "
            f"{accelerator.distributed_type.value} instead: Accelerate enables FSDP only on GPUs and other "
            "accelerators, so on the CPU (use_cpu=True) the run would silently be plain data parallel. On the CPU, "
            "shard with DeepSpeed ZeRO-3 (accelerate_configs/zero3.yaml with ddp_backend=gloo) or use "
            "accelerate_configs/ddp_cpu.yaml; for FSDP, launch on GPUs."
        )


def synced_generation(accelerator: Accelerator, gather_zero3: bool) -> bool:
    """Whether every rank must keep stepping `generate` until all are done (sharded weights are gathered per
    forward, a collective, under FSDP and under ZeRO-3 without gathering)."""
    return is_fsdp(accelerator) or (is_zero3(accelerator) and not gather_zero3)


def fsdp_version(accelerator: Accelerator) -> int | None:
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    return getattr(plugin, "fsdp_version", 1) if is_fsdp(accelerator) and plugin is not None else None


@contextmanager
def fsdp1_root_params(accelerator: Accelerator, model_wrapped: Any) -> Iterator[None]:
    """Under FSDP version 1, the root unit's own parameters (embeddings, final norm, LM head) gathered for
    generation, as GRPOTrainer does; the wrapped layers gather theirs in their own forward. A no-op otherwise
    (FSDP2's parameters are DTensors that gather themselves)."""
    if fsdp_version(accelerator) != 1:
        yield
        return
    from torch.distributed.fsdp import FullyShardedDataParallel

    with FullyShardedDataParallel.summon_full_params(model_wrapped, recurse=False, writeback=False):
        yield
