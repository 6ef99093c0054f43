"""Checks on paths a run writes to or resumes from, made before any model loads or compute starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint


def check_output_dir(output_dir: str) -> None:
    """`output_dir` must be creatable and writable: a run that cannot save would lose its work at the end."""
    path = Path(output_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".ail-write-check-"):
            pass
    except OSError as err:
        raise PermissionError(
            f"output_dir={output_dir!r} is not writable ({err.strerror or err}). Choose a folder you can write to "
            "(--output_dir), or fix its permissions."
        ) from err


def check_resume_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> None:
    """A checkpoint to resume from must exist: a folder, or `True` with a `checkpoint-N` under `output_dir`."""
    if resume_from_checkpoint in (None, False):
        return
    if resume_from_checkpoint is True:
        if not os.path.isdir(output_dir) or get_last_checkpoint(output_dir) is None:
            raise FileNotFoundError(
                f"resume_from_checkpoint=True, but {output_dir!r} holds no checkpoint-N folder. Start without "
                "resuming, or point resume_from_checkpoint at a checkpoint folder."
            )
        return
    if not os.path.isdir(resume_from_checkpoint):
        raise FileNotFoundError(
            f"resume_from_checkpoint={resume_from_checkpoint!r} does not exist. Give a checkpoint folder "
            f"(output_dir/checkpoint-N), or True for the latest one in output_dir."
        )


def check_model_source(name: str, what: str = "Model", trust_remote_code: bool = False) -> str:
    """A model given by name must be a local folder, a built-in name (`builtin:smollm2-135m-instruct`, converted on
    first use), or a Hub id that is cached or can be downloaded now (its config read with `trust_remote_code`, as the
    model will be loaded). Returns what to load."""
    from .builtin import builtin_model_path, is_builtin

    if is_builtin(name):
        return builtin_model_path(name)
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        return path
    if name.startswith((".", "/", "~")) or (os.sep in name and os.path.exists(os.path.dirname(path))):
        raise FileNotFoundError(
            f"{what} path {name!r} does not exist. Give a local model folder (with config.json) or a Hub id."
        )
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except OSError as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached or has no such repository"
        raise OSError(
            f"{what} {name!r} is not a local folder and could not be loaded as a Hub id ({reason}; "
            f"{str(err).splitlines()[0]}). Where the Hub is reachable, run `hf download {name}` (or check the "
            "spelling), or pass a local folder; `builtin:tiny-chat` runs fully offline."
        ) from None
    return name


def check_streaming(args) -> None:
    """A streamed dataset has no length, so the run's length must be given in steps (as Trainer requires)."""
    if args.max_steps is None or args.max_steps <= 0:
        raise ValueError(
            "train_dataset is an IterableDataset, whose length is unknown: set max_steps (e.g. max_steps=100), as "
            "Trainer requires for streaming data. Prompts are read from the stream as rounds need them."
        )


def check_some_source(args, teachers: list) -> None:
    """With `teacher_mode='replace'` the policy does not generate, so another source must."""
    if args.teacher_mode == "replace" and not (teachers or args.candidates_column or args.include_reference):
        raise ValueError(
            "teacher_mode='replace' leaves no candidate source: pass teachers=, set candidates_column, or "
            "set include_reference=True (or use teacher_mode='add')."
        )
