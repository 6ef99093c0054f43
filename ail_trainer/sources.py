"""Candidate sources: everything that proposes completions for a round's prompts, behind one small interface.

A source returns, for each prompt, a list of `Candidate`s whose `ids` are in the policy tokenizer. A new engine
(a served endpoint, vLLM) is one more class with a `candidates` method.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import PreTrainedTokenizerBase
from trl.models import unwrap_model_for_generation

from .data import reference_text
from .distributed import is_zero3, synced_generation
from .generation import SamplingSettings, build_generation_config, generate, render_prompts, truncate_prompts
from .records import Candidate
from .teachers import Teacher, place

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
    batch_size: int = 8
    share_prefill: bool = True
    synced_gpus: bool = False
    show_progress: bool = True
    generates: bool = True

    def candidates(self, round_id: int, prompt_idx: list[int], prompts: list[Any]) -> list[list[Candidate]]:
        ids = truncate_prompts(render_prompts(prompts, self.tokenizer, self.conversational), self.max_prompt_length,
                               self.name)
        with self.model() as model:
            config = build_generation_config(self.sampling, model, self.tokenizer)
            generated = generate(model, self.tokenizer, ids, self.num_candidates, config, self.batch_size,
                                 synced_gpus=self.synced_gpus, desc=f"Round {round_id}: {self.name}",
                                 show_progress=self.show_progress, share_prefill=self.share_prefill)
        out = []
        for samples in generated:
            row = []
            for g in samples:
                policy_ids = g.ids if self.is_policy_tokenizer else self.encode(g.text)
                row.append(Candidate(g.text, self.name, len(policy_ids), g.finished, ids=policy_ids))
            out.append(row)
        return out


@dataclass
class TextSource:
    """Fixed texts per prompt: a precomputed candidates column, or the dataset's reference completion."""

    name: str
    texts: Callable[[int], list[str]]  # prompt index -> its texts
    encode: Encode
    generates: bool = False

    def candidates(self, round_id: int, prompt_idx: list[int], prompts: list[Any]) -> list[list[Candidate]]:
        out = []
        for i in prompt_idx:
            out.append([Candidate(t, self.name, len(ids), True, ids=ids) for t in self.texts(i)
                        for ids in [self.encode(t)]])
        return out


def precomputed_source(column: list[list[str]], encode: Encode) -> TextSource:
    return TextSource("precomputed", lambda i: column[i], encode)


def reference_source(references: list[Any], encode: Encode) -> TextSource:
    return TextSource("reference", lambda i: [reference_text(references[i])], encode)


def build_sources(trainer: Any) -> list[CandidateSource]:
    """An `ActiveInheritanceTrainer`'s candidate sources, in the order their candidates appear in the records."""
    a, acc, data = trainer.args, trainer.accelerator, trainer.prompt_data
    common = dict(sampling=SamplingSettings.from_config(a), encode=trainer.encode, conversational=data.conversational,
                  max_prompt_length=a.max_prompt_length, batch_size=a.generation_batch_size,
                  share_prefill=a.share_prefill, show_progress=acc.is_local_main_process)
    sources: list[CandidateSource] = []
    if a.teacher_mode == "add":
        sources.append(ModelSource(
            "policy", lambda: policy_for_generation(trainer), trainer.tokenizer_for_text, a.num_candidates,
            synced_gpus=synced_generation(acc, a.ds3_gather_for_generation), **common))
    for teacher in trainer.teachers:
        sources.append(ModelSource(
            teacher.name, lambda t=teacher: teacher_for_generation(trainer, t), teacher.tokenizer,
            a.teacher_num_candidates or a.num_candidates, is_policy_tokenizer=False, **common))
    if data.precomputed is not None:
        sources.append(precomputed_source(data.precomputed, trainer.encode))
    if a.include_reference:
        sources.append(reference_source(data.references, trainer.encode))
    return sources


@contextmanager
def policy_for_generation(trainer: Any):
    """The policy, unwrapped from DDP / ZeRO (weights gathered unless `ds3_gather_for_generation=False`) / FSDP."""
    gather = trainer.args.ds3_gather_for_generation
    with activation_checkpointing_off(trainer.accelerator.unwrap_model(trainer.model_wrapped), trainer.args):
        with warnings.catch_warnings():
            # TRL's helper reads the deprecated `is_gradient_checkpointing` (already False here) on every call
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                             gather_deepspeed3_params=gather) as m:
                with trainer.accelerator.autocast():
                    yield m


@contextmanager
def activation_checkpointing_off(model: Any, args: Any):
    """Activation checkpointing off while generating, then back on with the run's own settings (`every_n_layers`,
    `offload` and the checkpoint kwargs of `activation_checkpointing_kwargs`), through the current API."""
    was_on = bool(getattr(model, "is_activation_checkpointing", False))
    if was_on:
        model.activation_checkpointing_disable()
    try:
        yield
    finally:
        if was_on:
            kwargs = dict(getattr(args, "activation_checkpointing_kwargs", None) or {})
            every_n_layers, offload = kwargs.pop("every_n_layers", 1), kwargs.pop("offload", False)
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs or None,
                                                  every_n_layers=every_n_layers, offload=offload)


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
