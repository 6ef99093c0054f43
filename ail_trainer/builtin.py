"""The offline default: a small chat model and a prompt set shipped inside the package."""

from __future__ import annotations

from pathlib import Path

BUILTIN_MODEL = "builtin:tiny-chat"
BUILTIN_DATASET = "builtin:prompts"
TINY_CHAT = Path(__file__).parent / "resources" / "tiny-chat"
BUILTIN_MODELS = {BUILTIN_MODEL: TINY_CHAT}


def is_builtin(name: str) -> bool:
    return isinstance(name, str) and name.startswith("builtin:")


def builtin_model_path(name: str = BUILTIN_MODEL) -> str:
    """The local folder of a built-in model.

    `builtin:tiny-chat` is a 0.5M-parameter Llama with its own tokenizer and chat template, shipped with the
    package (rebuilt by `scripts/build_tiny_chat.py`), so first use builds and downloads nothing.
    """
    if name not in BUILTIN_MODELS:
        raise ValueError(f"Unknown built-in model {name!r}; the built-in models are {sorted(BUILTIN_MODELS)}.")
    path = BUILTIN_MODELS[name]
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"The built-in model files are missing from {path}. Reinstall ail-trainer (pip install --force-reinstall "
            "ail-trainer), or rebuild them with `python scripts/build_tiny_chat.py` in a source checkout."
        )
    return str(path)
