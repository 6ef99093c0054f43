"""Keeping the log to what a user acts on: no progress bars for internal one-row datasets and no DeepSpeed accelerator
guess on machines that do not use DeepSpeed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_dataset_bars() -> Iterator[None]:
    """`datasets` progress bars off inside (SFTTrainer's preparation of the placeholder row and of each round's
    winners: the round logs its own summary line), restored afterwards."""
    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if shown:
            datasets.enable_progress_bars()


class _DropCpuGuess(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Setting accelerator to CPU")


def drop_deepspeed_cpu_guess() -> None:
    """Accelerate imports DeepSpeed whenever it is installed (`extract_model_from_parallel`), and DeepSpeed's import
    then warns that it fell back to the CPU, in runs that never use DeepSpeed. That one line is dropped from the
    "DeepSpeed" logger; everything else DeepSpeed logs stays."""
    logger = logging.getLogger("DeepSpeed")
    if not any(isinstance(f, _DropCpuGuess) for f in logger.filters):
        logger.addFilter(_DropCpuGuess())
