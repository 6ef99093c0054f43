"""Candidate sources: everything that proposes completions for a round's prompts, behind one small interface.

A source returns, for each prompt, a list of `Candidate`s whose `ids` are in the policy tokenizer. A new engine
(a served endpoint, vLLM in `vllm_source.py`) is one more class with a `candidates` method.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase
from trl.models import unwrap_model_for_generation

from . import compat
from .data import Precomputed, reference_text
from .distributed import fsdp1_root_params, is_zero3, synced_generation
from .endpoint import describe_error, endpoint_client, request_samples
from .generation import (
    SamplingSettings,
    build_generation_config,
    generate,
    render_prompts,
    truncate_prompts,
)
from .records import Candidate
from .teachers import Endpoint, Teacher, place
from .templates import PromptFormat

Encode = Callable[[str], list[int]]


class CandidateSource(Protocol):
    name: str
    generates: bool  # samples with a model (counted in generation time and tokens)

    def candidates(self, round_id: int, prompt_idx: list[int], prompts: list[Any]) -> list[list[Candidate]]:
        """One list of candidates per prompt, in input order."""
        ...


@dataclass
class ModelSource:
    """Samples `num_candidates` completions per prompt from a causal LM: the policy or a local teacher.

    `model` is a context manager factory that yields the model ready to generate (unwrapped from DDP/ZeRO/FSDP,
    placed on the device) and undoes that afterwards. Prompts are rendered with this source's own tokenizer and
    chat template; when that is not the policy's tokenizer, texts are re-encoded with `encode` for the rewards.
    """

    name: str
    model: Callable[[], AbstractContextManager[Any]]
    tokenizer: PreTrainedTokenizerBase
    num_candidates: int
    sampling: SamplingSettings
    encode: Encode
    conversational: bool
    is_policy_tokenizer: bool = True
    max_prompt_length: int | None = None
    batch_size: int = 16
    share_prefill: bool = True
    synced_gpus: bool = False
    show_progress: bool = True
    template_kwargs: Callable[[int], dict] | None = None  # a prompt's own chat-template arguments
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    generates: bool = True

    def candidates(self, round_id: int, prompt_idx: list[int], prompts: list[Any]) -> list[list[Candidate]]:
        rendered = render_for(self.prompt_format, prompts, self.tokenizer, self.conversational,
                              row_kwargs(self.template_kwargs, prompt_idx))
        ids = truncate_prompts(rendered, self.max_prompt_length, self.name)
        with self.model() as model:
            config = build_generation_config(self.sampling, model, self.tokenizer)
            try:
                generated = generate(model, self.tokenizer, ids, self.num_candidates, config, self.batch_size,
                                     synced_gpus=self.synced_gpus, desc=f"Round {round_id}: {self.name}",
                                     show_progress=self.show_progress, share_prefill=self.share_prefill,
                                     stop_strings=self.prompt_format.stop_strings)
            except RuntimeError as err:
                if "probability tensor contains" not in str(err):
                    raise
                raise RuntimeError(
                    f"Round {round_id}: '{self.name}' cannot sample: its next-token probabilities contain inf or NaN. "
                    "The weights have diverged or overflow their dtype (float16 on CPU overflows easily). Lower "
                    "`learning_rate`, or load the model in float32 or bfloat16 (`model_init_kwargs={'dtype': ...}`); "
                    "checkpoints saved before this round are intact."
                ) from err
        out = []
        for samples in generated:
            row = []
            for g in samples:
                # after a template's "Answer: " comes a newline or space the policy should not learn
                text = g.text.strip() if self.prompt_format.named else g.text
                policy_ids = g.ids if self.is_policy_tokenizer and text == g.text else self.encode(text)
                row.append(Candidate(text, self.name, len(policy_ids), g.finished, ids=policy_ids))
            out.append(row)
        return out


@dataclass
class TextSource:
    """Fixed texts per prompt: a precomputed candidates column, or the dataset's reference completion."""

    name: str
    texts: Callable[[int], list[Precomputed | str]]  # prompt index -> its texts (a plain string ended on its own)
    encode: Encode
    generates: bool = False

    def candidates(self, round_id: int, prompt_idx: list[int], prompts: list[Any]) -> list[list[Candidate]]:
        out = []
        for i in prompt_idx:
            texts = [Precomputed(t) if isinstance(t, str) else t for t in self.texts(i)]
            out.append([Candidate(t.text, self.name, len(ids), t.finished, ids=ids) for t in texts
                        for ids in [self.encode(t.text)]])
        return out


@dataclass
class EndpointSource:
    """Samples `num_candidates` completions per prompt from a teacher behind an OpenAI-compatible endpoint.

    Requests go through the `openai` client (timeouts, retries with backoff), at most `max_concurrency` in flight.
    With `supports_n` one request asks for all k samples; otherwise (e.g. `transformers serve`) k requests are sent.
    A request that still fails is listed in `failures` (row -> errors) for the round record, and its candidates
    are missing: the round goes on. The server applies its own chat template; ids are re-encoded with `encode`.
    """

    name: str
    endpoint: Endpoint
    num_candidates: int
    sampling: SamplingSettings
    encode: Encode
    conversational: bool
    supports_n: bool = True
    show_progress: bool = True
    generates: bool = True
    failures: dict[int, list[str]] = field(default_factory=dict)

    def candidates(self, round_id: int, prompt_idx: list[int], prompts: list[Any]) -> list[list[Candidate]]:
        from concurrent.futures import ThreadPoolExecutor

        self.failures = {}
        client = endpoint_client(self.endpoint)
        k = self.num_candidates
        requests = [(row, k) for row in range(len(prompts))] if self.supports_n else \
            [(row, 1) for row in range(len(prompts)) for _ in range(k)]
        out: list[list[Candidate]] = [[] for _ in prompts]
        with ThreadPoolExecutor(self.endpoint.max_concurrency) as pool:
            futures = [(row, pool.submit(request_samples, client, self.endpoint.model, prompts[row], n,
                                         self.sampling, self.conversational)) for row, n in requests]
            for row, future in tqdm(futures, desc=f"Round {round_id}: {self.name}", leave=False,
                                    disable=not self.show_progress):
                try:
                    samples = future.result()
                except Exception as err:  # recorded, not fatal: this request's candidates are left out
                    self.failures.setdefault(row, []).append(describe_error(err, self.endpoint))
                    continue
                for text, finished in samples:
                    ids = self.encode(text)
                    out[row].append(Candidate(text, self.name, len(ids), finished, ids=ids))
        return out


def render_for(prompt_format: PromptFormat, prompts: list[Any], tokenizer: PreTrainedTokenizerBase,
               conversational: bool, kwargs: list[dict] | None) -> list[list[int]]:
    """Prompt ids in a source's format: its own template, else its tokenizer's chat template or the raw string."""
    if prompt_format.custom:
        return prompt_format.render(prompts, tokenizer, kwargs)
    return render_prompts(prompts, tokenizer, conversational, row_kwargs=kwargs)


def row_kwargs(template_kwargs: Callable[[int], dict] | None, prompt_idx: list[int]) -> list[dict] | None:
    return [template_kwargs(i) for i in prompt_idx] if template_kwargs is not None else None


def precomputed_source(column: list[list[Precomputed]], encode: Encode) -> TextSource:
    return TextSource("precomputed", lambda i: column[i], encode)


def reference_source(references: list[Any], encode: Encode) -> TextSource:
    return TextSource("reference", lambda i: [Precomputed(reference_text(references[i]))], encode)


def build_sources(trainer: Any) -> list[CandidateSource]:
    """An `ActiveInheritanceTrainer`'s candidate sources, in the order their candidates appear in the records."""
    a, acc, data = trainer.args, trainer.accelerator, trainer.prompt_data
    common = dict(sampling=SamplingSettings.from_config(a), encode=trainer.encode, conversational=data.conversational,
                  max_prompt_length=a.max_prompt_length, batch_size=a.generation_batch_size,
                  share_prefill=a.share_prefill, show_progress=acc.is_local_main_process,
                  template_kwargs=data.template_kwargs if data.has_template_kwargs else None)
    sources: list[CandidateSource] = []
    if a.teacher_mode == "add" and a.use_vllm:
        from .vllm_source import vllm_source

        sources.append(vllm_source(trainer, common["template_kwargs"]))
    elif a.teacher_mode == "add":
        sources.append(ModelSource(
            "policy", lambda: policy_for_generation(trainer), trainer.tokenizer_for_text, a.num_candidates,
            synced_gpus=synced_generation(acc, a.ds3_gather_for_generation),
            prompt_format=PromptFormat.resolve(a.prompt_template, a.stop_strings), **common))
    for teacher in trainer.teachers:
        if isinstance(teacher, Endpoint):
            sources.append(EndpointSource(
                teacher.name, teacher, teacher.num_candidates or a.teacher_num_candidates or a.num_candidates,
                common["sampling"], trainer.encode, data.conversational, trainer.endpoint_supports_n[teacher.name],
                show_progress=acc.is_local_main_process))
            continue
        sources.append(ModelSource(
            teacher.name, lambda t=teacher: teacher_for_generation(trainer, t), teacher.tokenizer,
            teacher.num_candidates or a.teacher_num_candidates or a.num_candidates, is_policy_tokenizer=False,
            prompt_format=teacher.prompt_format, **common))
    if data.precomputed is not None:
        sources.append(precomputed_source(data.precomputed, trainer.encode))
    if a.include_reference:
        sources.append(reference_source(data.references, trainer.encode))
    return sources


@contextmanager
def policy_for_generation(trainer: Any):
    """The policy, unwrapped from DDP / ZeRO (weights gathered unless `ds3_gather_for_generation=False`) / FSDP
    (version 1: the root unit's parameters gathered)."""
    gather = trainer.args.ds3_gather_for_generation
    with activation_checkpointing_off(trainer.accelerator.unwrap_model(trainer.model_wrapped), trainer.args):
        with warnings.catch_warnings():
            # TRL's helper reads the deprecated `is_gradient_checkpointing` (already False here) on every call
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                             gather_deepspeed3_params=gather) as m:
                with fsdp1_root_params(trainer.accelerator, trainer.model_wrapped), trainer.accelerator.autocast():
                    yield m


@contextmanager
def activation_checkpointing_off(model: Any, args: Any):
    """Activation checkpointing off while generating, then back on with the run's own settings."""
    was_on = compat.checkpointing_is_on(model)
    if was_on:
        compat.checkpointing_off(model)
    try:
        yield
    finally:
        if was_on:
            compat.checkpointing_on(model, args)


@contextmanager
def teacher_for_generation(trainer: Any, teacher: Teacher):
    """A teacher on the device (ZeRO-3: gathered), offloaded to the CPU again afterwards if so configured."""
    acc = trainer.accelerator
    if is_zero3(acc):
        with unwrap_model_for_generation(teacher.model, acc) as m:
            yield m
        return
    place(teacher.model, acc.device)
    try:
        with acc.autocast():
            yield teacher.model
    finally:
        if trainer.args.offload_teachers and acc.device.type != "cpu":
            place(teacher.model, torch.device("cpu"))
