"""The offline default: a small local chat model and prompt set, built once and cached."""

from __future__ import annotations

import os
from pathlib import Path

BUILTIN_MODEL = "builtin:tiny-chat"
BUILTIN_DATASET = "builtin:prompts"


def cache_dir() -> Path:
    return Path(os.environ.get("AIL_CACHE", Path.home() / ".cache" / "ail-trainer"))


def builtin_model_path(name: str = BUILTIN_MODEL) -> str:
    """Build (once) a ~1M-parameter Llama that has been taught to answer the built-in prompts briefly."""
    if name != BUILTIN_MODEL:
        raise ValueError(f"Unknown built-in model {name!r}; the built-in model is {BUILTIN_MODEL!r}.")
    path = cache_dir() / "tiny-chat-v1"
    if (path / "model.safetensors").exists():
        return str(path)
    from accelerate import PartialState

    # every process of a launch waits while the first one builds it
    with PartialState().main_process_first():
        if not (path / "model.safetensors").exists():
            _build(path)
    return str(path)


def _build(path: Path) -> None:
    import tempfile

    from trl import SFTConfig, SFTTrainer

    from .prompts import prompt_dataset
    from .testing import build_model, build_tokenizer

    tok = build_tokenizer(vocab_size=512)
    model = build_model(tok, "llama", hidden_size=96, num_layers=3, num_heads=4, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        args = SFTConfig(tmp, num_train_epochs=4, learning_rate=3e-3, per_device_train_batch_size=16, bf16=False,
                         report_to=[], save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True)
        SFTTrainer(model, args, train_dataset=prompt_dataset("train"), processing_class=tok).train()
    path.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(path.name + ".partial")
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    for f in tmp_path.iterdir():
        os.replace(f, path / f.name)
    tmp_path.rmdir()
