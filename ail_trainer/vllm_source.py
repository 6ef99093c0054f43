"""The policy's candidates from vLLM.

TRL's `VLLMGeneration` (the engine GRPOTrainer uses) starts vLLM and syncs the weights, for ZeRO-3, FSDP and PEFT.
The requests are built here, from the same `SamplingSettings` every other path uses, through `vllm_sampling_kwargs`:
one `SamplingParams` per prompt, with `n = k` and a seed drawn from the run's seed, the round and the prompt, so
the k samples differ, every rank of a tensor-parallel group sends the same request, and the same seed gives the same
candidates whatever the world size.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from . import compat
from .generation import SamplingSettings, cut_at_stop, eos_ids, truncate_prompts
from .records import Candidate
from .templates import PromptFormat, cut_at_stop_strings

# `GenerationConfig` arguments (what `generation_kwargs` holds) and their `SamplingParams` names.
GENERATION_TO_VLLM = {
    "max_new_tokens": "max_tokens", "min_new_tokens": "min_tokens", "temperature": "temperature", "top_p": "top_p",
    "top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty", "stop_strings": "stop",
}
# Keys with a meaning of their own here; anything else has no vLLM equivalent and is refused.
HANDLED = {"do_sample", "eos_token_id", "pad_token_id", "seed"}


def vllm_sampling_kwargs(settings: SamplingSettings, stop_token_ids: list[int] | None = None,
                         stop_strings: tuple[str, ...] = ()) -> dict[str, Any]:
    """vLLM `SamplingParams` arguments meaning what `build_generation_config` means for `generate`.

    `generation_kwargs` keys are translated to their vLLM names; a key vLLM has no equivalent for raises a
    `ValueError` naming it, before anything is generated. No log-probabilities are asked for: only tokens are used.
    """
    extra = dict(settings.generation_kwargs or {})
    unknown = sorted(k for k in extra if k not in GENERATION_TO_VLLM and k not in HANDLED)
    if unknown:
        raise ValueError(
            f"generation_kwargs {unknown} are `GenerationConfig` arguments with no vLLM `SamplingParams` equivalent "
            f"(translated with use_vllm=True: {sorted(GENERATION_TO_VLLM)}, do_sample, eos_token_id). Remove them, "
            "or set use_vllm=False to sample with transformers."
        )
    if "seed" in extra:
        raise ValueError(
            "generation_kwargs['seed']: every request is seeded from `seed`, the round and the prompt, so that the "
            "k candidates differ and a run repeats. Remove it and set `seed` instead."
        )
    kwargs: dict[str, Any] = dict(
        max_tokens=settings.max_new_tokens, temperature=settings.temperature, top_p=settings.top_p,
        top_k=settings.top_k, repetition_penalty=settings.repetition_penalty, logprobs=None,
    )
    for key, value in extra.items():
        if key in GENERATION_TO_VLLM:
            kwargs[GENERATION_TO_VLLM[key]] = list(value) if key == "stop_strings" else value
    stops = set(stop_token_ids or [])
    eos = extra.get("eos_token_id")
    stops |= set([] if eos is None else [eos] if isinstance(eos, int) else eos)
    if stops:
        kwargs["stop_token_ids"] = sorted(stops)
    if stop_strings:
        kwargs["stop"] = sorted(set(kwargs.get("stop") or []) | set(stop_strings))
    if not extra.get("do_sample", settings.do_sample):
        kwargs.update(temperature=0.0, top_p=1.0, top_k=0)  # greedy, as `do_sample=False`
    return kwargs


def request_seed(seed: int, round_id: int, prompt_index: int) -> int:
    """One prompt's request seed in a round; vLLM gives its k samples `seed + i`."""
    return zlib.crc32(f"{seed}/{round_id}/{prompt_index}".encode()) % (2**31 - 1024)


@dataclass
class VLLMSource:
    """The policy's candidates from vLLM, through TRL's `VLLMGeneration` (colocated or a `trl vllm-serve` server).

    The engine gets the current weights before the first request after any optimizer step, including the first
    round of a second `train()`; rounds start at an optimizer-step boundary, so never during gradient accumulation.
    """

    engine: Any  # a trl VLLMGeneration
    tokenizer: PreTrainedTokenizerBase
    num_candidates: int
    stop: set[int]  # EOS / end-of-turn ids of the policy in memory, sent to vLLM as stop tokens
    conversational: bool
    sampling: SamplingSettings
    seed: int = 0
    # (owner, step): a new owner object (a new `train()`'s TrainerState) or a new optimizer step means new weights
    weights_version: Callable[[], tuple[Any, int]] = lambda: (None, 0)
    max_prompt_length: int | None = None
    name: str = "policy"
    template_kwargs: Callable[[int], dict] | None = None
    prompt_format: PromptFormat = PromptFormat()
    generates: bool = True
    synced_version: tuple[Any, int] | None = None

    def __post_init__(self) -> None:
        self.request_kwargs = vllm_sampling_kwargs(self.sampling, sorted(self.stop), self.prompt_format.stop_strings)

    def sync_if_stale(self) -> None:
        owner, step = self.weights_version()
        last = self.synced_version
        if last is None or last[0] is not owner or last[1] != step:
            self.engine.sync_weights()
            self.synced_version = (owner, step)

    def candidates(self, round_id: int, prompt_idx: list[int], prompts: list[Any]) -> list[list[Candidate]]:
        from .sources import render_for, row_kwargs

        ids = truncate_prompts(render_for(self.prompt_format, prompts, self.tokenizer, self.conversational,
                                          row_kwargs(self.template_kwargs, prompt_idx)),
                               self.max_prompt_length, self.name)
        self.sync_if_stale()
        seeds = [request_seed(self.seed, round_id, i) for i in prompt_idx]
        if self.engine.mode == "colocate":
            rows = colocate_generate(self.engine, ids, seeds, self.num_candidates, self.request_kwargs)
        else:
            rows = server_generate(self.engine, ids, seeds[0] if seeds else 0, self.num_candidates,
                                   self.request_kwargs)
        return [[self.candidate(seq) for seq in row] for row in rows]

    def candidate(self, seq: list[int]) -> Candidate:
        kept, finished = cut_at_stop(list(seq), self.stop)
        if not finished and len(seq) < self.request_kwargs["max_tokens"]:
            # vLLM stops early only at a stop token or string, e.g. an EOS it read from the checkpoint on disk
            finished = True
            if kept and kept[-1] in self.tokenizer.all_special_ids:
                kept = kept[:-1]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        if self.prompt_format.stop_strings:
            text, cut = cut_at_stop_strings(text, self.prompt_format.stop_strings)
            if cut:
                kept = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if self.prompt_format.named:
            text = text.strip()
        return Candidate(text, self.name, len(kept), finished, ids=kept)


def colocate_generate(engine: Any, prompts: list[list[int]], seeds: list[int], k: int,
                      kwargs: dict[str, Any]) -> list[list[list[int]]]:
    """k samples per prompt from the colocated `vllm.LLM`, one seeded `SamplingParams(n=k)` per prompt.

    Under tensor parallelism every rank of a group sends the group's prompts, in the same order, and keeps its own.
    """
    from vllm import SamplingParams

    requests = list(zip(prompts, seeds))
    tp = engine.tensor_parallel_size
    if tp > 1:
        gathered: list[Any] = [None] * tp
        torch.distributed.all_gather_object(gathered, requests, group=engine.tp_group)
        rank_in_group = torch.distributed.get_rank(group=engine.tp_group)
        offset = sum(len(part) for part in gathered[:rank_in_group])
        requests = [r for part in gathered for r in part]
    else:
        offset = 0
    params = [SamplingParams(n=k, seed=seed, **kwargs) for _, seed in requests]
    with compat.vllm_awake(engine):
        outputs = engine.llm.generate([{"prompt_token_ids": p} for p, _ in requests], sampling_params=params,
                                      use_tqdm=False)
    rows = [[list(o.token_ids) for o in out.outputs] for out in outputs]
    return rows[offset : offset + len(prompts)]


def server_generate(engine: Any, prompts: list[list[int]], seed: int, k: int,
                    kwargs: dict[str, Any]) -> list[list[list[int]]]:
    """k samples per prompt from a `trl vllm-serve` server, through TRL's own request path (gathered to the main
    process, which sends one `n = k` request, then broadcast back). The request carries this module's sampling
    arguments; vLLM gives sample i of a prompt the seed `seed + i`."""
    engine.generation_kwargs = {**kwargs, "seed": seed}
    engine.max_completion_length = kwargs["max_tokens"]
    engine.logprobs = None
    _, completions, _, _ = engine.generate([p for p in prompts for _ in range(k)], None, k)
    return [[list(s) for s in completions[row * k : (row + 1) * k]] for row in range(len(prompts))]


def vllm_engine(trainer: Any) -> Any:
    """TRL's vLLM engine for the policy, configured from the GRPO-named fields of the config.

    The context length defaults to the longest prompt plus `max_completion_length` (vLLM would otherwise reserve the
    model's whole context), and `max_num_seqs` covers a round's batch from every rank of a tensor-parallel group.
    """
    from trl.generation.vllm_generation import VLLMGeneration

    a = trainer.args
    return VLLMGeneration(
        trainer.model, trainer.accelerator, trainer.processing_class, mode=a.vllm_mode,
        server_base_url=a.vllm_server_base_url, server_host=a.vllm_server_host, server_port=a.vllm_server_port,
        server_timeout=a.vllm_server_timeout, group_port=a.vllm_group_port,
        tensor_parallel_size=a.vllm_tensor_parallel_size, gpu_memory_utilization=a.vllm_gpu_memory_utilization,
        max_model_length=a.vllm_max_model_length or context_length(trainer),
        max_num_seqs=a.generation_batch_size * a.num_candidates * a.vllm_tensor_parallel_size,
        enable_sleep_mode=a.vllm_enable_sleep_mode, model_impl=a.vllm_model_impl,
        trust_remote_code=a.trust_remote_code, max_completion_length=a.max_completion_length, logprobs=None,
    )


def context_length(trainer: Any) -> int:
    """Prompt plus completion tokens a request can need: `max_prompt_length` (or the longest rendered training
    prompt when it is None) plus `max_completion_length`."""
    a = trainer.args
    longest = a.max_prompt_length
    if longest is None:
        data = trainer.prompt_data
        from .sources import render_for

        rendered = render_for(PromptFormat.resolve(a.prompt_template, a.stop_strings), data.prompts,
                              trainer.tokenizer_for_text, data.conversational, None)
        longest = max(map(len, rendered), default=1)
    return longest + a.max_completion_length


def vllm_source(trainer: Any, template_kwargs: Callable[[int], dict] | None) -> VLLMSource:
    """The policy's `VLLMSource` for an `ActiveInheritanceTrainer`."""
    a = trainer.args
    tok = trainer.tokenizer_for_text
    model = trainer.model
    return VLLMSource(
        vllm_engine(trainer), tok, a.num_candidates, set(eos_ids(model, tok)), trainer.prompt_data.conversational,
        SamplingSettings.from_config(a), seed=a.seed,
        weights_version=lambda: (trainer.state, trainer.state.global_step),
        max_prompt_length=a.max_prompt_length, template_kwargs=template_kwargs,
        prompt_format=PromptFormat.resolve(a.prompt_template, a.stop_strings),
    )
