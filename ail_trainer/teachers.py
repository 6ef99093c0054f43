"""Teacher models: extra candidate generators for the multi-source setting."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .checks import check_model_source
from .templates import PromptFormat


@dataclass
class Teacher:
    """A local teacher model. `prompt_format`: how it is prompted (its own chat template by default, or e.g. the
    paper's `question_answer` template for a base model) and the stop strings that end its answers."""

    name: str
    model: Any  # a PreTrainedModel, or a path / hub id until `load_model` runs
    tokenizer: PreTrainedTokenizerBase
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    num_candidates: int | None = None  # defaults to teacher_num_candidates / num_candidates

    # keys of a local teacher's mapping, e.g. {"model": "google/gemma-3-270m", "prompt_template": "question_answer"}
    SPEC_KEYS = ("model", "name", "prompt_template", "stop_strings", "num_candidates")


@dataclass
class Endpoint:
    """A teacher served behind an OpenAI-compatible endpoint (vLLM, SGLang, TGI, llama.cpp, `transformers serve`).

    Nothing is loaded in the trainer. The API key is read from the environment variable `api_key_env` when the
    requests are made, and is never stored here, logged or written anywhere.
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    num_candidates: int | None = None  # defaults to teacher_num_candidates / num_candidates
    max_concurrency: int = 8  # requests in flight at once
    timeout: float = 120.0  # seconds per request
    max_retries: int = 3  # retries with exponential backoff (the `openai` client's)

    @property
    def name(self) -> str:
        return f"endpoint:{self.model}"

    @classmethod
    def from_spec(cls, spec: dict, index: int) -> Endpoint:
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        missing = [k for k in ("base_url", "model") if k not in spec]
        if unknown or missing:
            raise ValueError(
                f"Teacher {index} names an endpoint, but " + (f"has unknown keys {unknown}" if unknown else
                                                              f"lacks {missing}")
                + f"; an endpoint teacher takes {sorted(known)}, e.g. "
                "{'base_url': 'http://host:8000/v1', 'model': 'served-name', 'api_key_env': 'MY_API_KEY'}."
            )
        endpoint = cls(**spec)
        if endpoint.api_key_env is not None and endpoint.api_key_env not in os.environ:
            raise ValueError(
                f"Teacher {index} ({endpoint.name}) reads its API key from the environment variable "
                f"{endpoint.api_key_env!r}, which is not set. Export it, or drop api_key_env for a server without "
                "authentication."
            )
        if endpoint.max_concurrency < 1:
            raise ValueError(f"Teacher {index}: max_concurrency must be >= 1, got {endpoint.max_concurrency}.")
        return endpoint

    def api_key(self) -> str:
        return os.environ[self.api_key_env] if self.api_key_env else "EMPTY"


def _load_tokenizer(source: str, name: str, trust_remote_code: bool) -> PreTrainedTokenizerBase:
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as err:
        hint = "the path does not exist" if not os.path.exists(source) and source.startswith(("/", ".")) else str(err)
        raise ValueError(
            f"Could not load the tokenizer of teacher {name!r} from {source!r} ({hint}). Give a local folder or hub "
            "id that holds a tokenizer, or pass the teacher as a (model, tokenizer) pair."
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_teachers(teachers: list | None, trust_remote_code: bool = False,
                     conversational: bool = False) -> list[Teacher | Endpoint]:
    """Accept hub ids, local paths, built-in names, loaded models and (model, tokenizer) pairs; load tokenizers now,
    weights later. A mapping with `model` and any of `name`, `prompt_template`, `stop_strings`, `num_candidates` is a
    local teacher with those options; a mapping with `base_url` (or an `Endpoint`) is a teacher behind an
    OpenAI-compatible endpoint.

    With conversational prompts, each teacher renders them with its own chat template, so it must have one.
    """
    out: list[Teacher | Endpoint] = []
    for i, spec in enumerate(teachers or []):
        if isinstance(spec, Endpoint):
            out.append(spec)
            continue
        options: dict[str, Any] = {}
        if isinstance(spec, dict) and "base_url" not in spec and "model" in spec:
            unknown = sorted(set(spec) - set(Teacher.SPEC_KEYS))
            if unknown:
                raise ValueError(f"Teacher {i} has unknown keys {unknown}; a local teacher takes "
                                 f"{list(Teacher.SPEC_KEYS)} (an endpoint teacher takes base_url and model).")
            options, spec = dict(spec), spec["model"]
            if options.get("num_candidates") is not None and options["num_candidates"] < 1:
                raise ValueError(f"Teacher {i}: num_candidates must be >= 1, got {options['num_candidates']}.")
        if isinstance(spec, dict):
            out.append(Endpoint.from_spec(spec, i))
            continue
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            model, tokenizer = spec
            name = getattr(model, "name_or_path", None) or f"teacher{i}"
        elif isinstance(spec, str):
            model, name = check_model_source(spec, f"Teacher {i}", trust_remote_code), spec
            tokenizer = _load_tokenizer(model, name, trust_remote_code)
        elif isinstance(spec, PreTrainedModel):
            model, name = spec, spec.name_or_path or f"teacher{i}"
            tokenizer = _load_tokenizer(spec.name_or_path, name, trust_remote_code)
        else:
            raise TypeError(
                f"Teacher {i} must be a hub id, a local path, a PreTrainedModel, a (model, tokenizer) pair or an "
                f"endpoint mapping with base_url and model; got {type(spec).__name__}."
            )
        if isinstance(model, str) and model.startswith(("/", ".")) and not os.path.exists(model):
            raise ValueError(f"Teacher model path {model!r} does not exist.")
        name = options.get("name") or name
        prompt_format = PromptFormat.resolve(options.get("prompt_template"), options.get("stop_strings"),
                                             owner=f"Teacher {name!r}")
        if conversational and not prompt_format.custom and getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                f"Teacher {name!r} has no chat template, but the prompts are conversational (message lists), and "
                "each teacher renders them in its own chat format. For a base model, give it a prompt template: "
                "{'model': ..., 'prompt_template': 'question_answer'} (the paper's '### Question: ... ### Answer: ') "
                "or any Jinja chat template; or use a chat/instruct version of the teacher, or plain-string prompts."
            )
        out.append(Teacher(f"teacher:{name}", model, tokenizer, prompt_format, options.get("num_candidates")))
    return out


def load_teacher_model(teacher: Teacher, model_init_kwargs: dict | None, trust_remote_code: bool) -> None:
    if isinstance(teacher.model, str):
        kwargs = {"dtype": "auto", **(model_init_kwargs or {}), "trust_remote_code": trust_remote_code}
        kwargs.pop("device_map", None)
        teacher.model = AutoModelForCausalLM.from_pretrained(teacher.model, **kwargs)
    teacher.model.eval()
    teacher.model.requires_grad_(False)
    if teacher.model.generation_config.pad_token_id is None:
        teacher.model.generation_config.pad_token_id = teacher.tokenizer.pad_token_id


def place(model: torch.nn.Module, device: torch.device) -> None:
    """Move a frozen extra model (teacher, reward model) to `device` when it is not there already; ZeRO-3 shards stay
    put."""
    param = next(model.parameters(), None)
    if param is not None and param.device != device and not hasattr(param, "ds_id"):
        model.to(device)
