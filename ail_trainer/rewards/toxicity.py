"""Toxicity rewards: Detoxify (default) or the offline `alt-profanity-check` model."""

from __future__ import annotations

from typing import Any

from .base import Reward

BACKENDS = ("detoxify", "profanity")
DETOXIFY_MODELS = ("original", "unbiased", "multilingual")

# One loaded scorer per process and configuration, shared by every reward instance.
_SCORERS: dict[tuple, Any] = {}


def _missing(package: str, backend: str) -> ImportError:
    return ImportError(f"The toxicity backend '{backend}' needs the package `{package}`: pip install {package}")


def _default_device() -> str:
    import torch

    if torch.cuda.is_available():
        from accelerate import PartialState

        return str(PartialState().device)
    return "cpu"


def load_detoxify(model: str = "original", checkpoint: str | None = None, huggingface_config_path: str | None = None,
                  device: str | None = None):
    """Load (once per process) a Detoxify model, from its published weights or a local checkpoint."""
    device = device or _default_device()
    key = ("detoxify", model, checkpoint, huggingface_config_path, device)
    if key in _SCORERS:
        return _SCORERS[key]
    try:
        from detoxify import Detoxify
    except ImportError:
        raise _missing("detoxify", "detoxify") from None
    if checkpoint is None and model not in DETOXIFY_MODELS:
        raise ValueError(f"Unknown Detoxify model {model!r}; choose one of {DETOXIFY_MODELS} or pass `checkpoint`.")
    try:
        scorer = Detoxify(model, checkpoint=checkpoint, device=device, huggingface_config_path=huggingface_config_path)
    except Exception as err:  # Detoxify surfaces a failed download as a bare URLError / HTTPError / OSError
        if checkpoint is not None:
            raise RuntimeError(f"Could not load the Detoxify checkpoint {checkpoint!r}: {err}") from err
        raise RuntimeError(
            f"Could not download the Detoxify '{model}' weights ({type(err).__name__}: {err}). Offline, point the "
            "reward at a local copy: download the checkpoint file (the .ckpt URL in detoxify.detoxify.MODEL_URLS) "
            "and the Hugging Face config/tokenizer folder of its base model (e.g. `bert-base-uncased` for "
            "'original') on a machine with network access, then pass "
            "`{name: low_toxicity, checkpoint: /path/model.ckpt, huggingface_config_path: /path/bert-base-uncased}`"
            " (the checkpoint's config.arch.args.model_type must name that folder). Or use the offline backend: "
            "`{name: low_toxicity, backend: profanity}`."
        ) from err
    _SCORERS[key] = scorer
    return scorer


def profanity_probabilities(texts: list[str]) -> list[float]:
    try:
        from profanity_check import predict_prob
    except ImportError:
        raise _missing("alt-profanity-check", "profanity") from None
    return [float(p) for p in predict_prob(texts)]


class Toxicity(Reward):
    """Raw toxicity probability in [0, 1] (higher is more toxic). Used by profiling; maximizing it raises toxicity.

    Options: `backend` ('detoxify' or 'profanity'); for Detoxify, `model` ('original', 'unbiased',
    'multilingual'), or `checkpoint` with `huggingface_config_path` for local weights, `device`, `batch_size`
    and `attribute` (the Detoxify head, 'toxicity' by default).
    """

    name = "toxicity"

    def __init__(self, backend: str = "detoxify", model: str = "original", checkpoint: str | None = None,
                 huggingface_config_path: str | None = None, device: str | None = None, batch_size: int = 32,
                 attribute: str = "toxicity"):
        if backend not in BACKENDS:
            raise ValueError(f"Reward '{self.name}': backend must be one of {BACKENDS}, got {backend!r}.")
        if batch_size < 1:
            raise ValueError(f"Reward '{self.name}': batch_size must be >= 1, got {batch_size}.")
        self.backend = backend
        self.model = model
        self.checkpoint = checkpoint
        self.huggingface_config_path = huggingface_config_path
        self.device = device
        self.batch_size = batch_size
        self.attribute = attribute

    def toxicity(self, texts: list[str]) -> list[float]:
        if self.backend == "profanity":
            return profanity_probabilities(texts)
        import torch

        scorer = load_detoxify(self.model, self.checkpoint, self.huggingface_config_path, self.device)
        if self.attribute not in scorer.class_names:
            raise ValueError(
                f"Reward '{self.name}': the Detoxify model has no '{self.attribute}' head; "
                f"choose an attribute from {scorer.class_names}."
            )
        column = scorer.class_names.index(self.attribute)
        out: list[float] = []
        scorer.model.eval()
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                inputs = scorer.tokenizer(batch, return_tensors="pt", truncation=True, padding=True)
                logits = scorer.model(**inputs.to(scorer.model.device))[0]
                out.extend(torch.sigmoid(logits[:, column]).float().cpu().tolist())
        return out

    def score(self, texts: list[str], **kwargs: Any) -> list[float]:
        return self.toxicity(texts)


class LowToxicity(Toxicity):
    """`1 - toxicity`, in [0, 1]: what a recipe maximizes to steer toward non-toxic text."""

    name = "low_toxicity"

    def score(self, texts: list[str], **kwargs: Any) -> list[float]:
        return [1.0 - t for t in self.toxicity(texts)]
