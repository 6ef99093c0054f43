"""Batched candidate generation for one model: left padding, shared prefill, EOS cut, progress bar."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedTokenizerBase
from transformers.generation import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteriaList,
    StopStringCriteria,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
)

from . import compat
from .sampling import draw, invalid_rows
from .templates import cut_at_stop_strings

logger = logging.getLogger(__name__)


@dataclass
class Generated:
    text: str
    ids: list[int]
    finished: bool  # stopped at EOS rather than at the length limit


def render_prompts(prompts: list[Any], tokenizer: PreTrainedTokenizerBase, conversational: bool,
                   chat_template_kwargs: dict | None = None,
                   row_kwargs: list[dict[str, Any]] | None = None) -> list[list[int]]:
    """Tokenize prompts as SFT training does: chat template with a generation prompt, or the raw string.

    `row_kwargs` holds each prompt's own chat-template arguments (a dataset's `tools` / `chat_template_kwargs`)."""
    if conversational:
        if tokenizer.chat_template is None:
            raise ValueError(
                f"The prompts are conversational but the tokenizer {tokenizer.name_or_path!r} has no chat template; "
                "set `tokenizer.chat_template` or use plain-string prompts."
            )
        if row_kwargs is not None and any(row_kwargs):
            return [list(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True,
                                                       **{**(chat_template_kwargs or {}), **kw})["input_ids"])
                    for p, kw in zip(prompts, row_kwargs)]
        out = tokenizer.apply_chat_template(
            prompts, add_generation_prompt=True, tokenize=True, return_dict=True, **(chat_template_kwargs or {})
        )
        return [list(ids) for ids in out["input_ids"]]
    return [list(ids) for ids in tokenizer(prompts)["input_ids"]]


def truncate_prompts(prompt_ids: list[list[int]], max_length: int | None, source: str) -> list[list[int]]:
    """Keep the last `max_length` tokens of longer prompts, with a warning naming how many were cut."""
    if max_length is None:
        return prompt_ids
    long = sum(len(p) > max_length for p in prompt_ids)
    if long:
        logger.warning(
            f"{long} of {len(prompt_ids)} prompts for '{source}' exceed max_prompt_length={max_length} tokens and "
            "were truncated from the left (their end is kept). Raise max_prompt_length to keep them whole."
        )
        prompt_ids = [p[-max_length:] for p in prompt_ids]
    return prompt_ids


def eos_ids(model: Any, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _generate_shared_prefill(model: Any, input_ids: torch.Tensor, attention: torch.Tensor, num_return: int,
                             generation_config: GenerationConfig, synced_gpus: bool,
                             stopping_criteria: StoppingCriteriaList | None = None) -> torch.Tensor:
    """Prefill each prompt once, copy its KV cache `num_return` times, then sample.

    `generate(num_return_sequences=k)` repeats every prompt k times before the prefill. Here the prompt (all but
    its last token, which `generate` needs to produce the first logits) is encoded once, with the position ids
    `generate` itself derives from the attention mask.
    """
    positions = attention.cumsum(-1) - 1
    positions.masked_fill_(attention == 0, 1)
    out = model(input_ids=input_ids[:, :-1], attention_mask=attention[:, :-1], position_ids=positions[:, :-1],
                use_cache=True)
    cache = compat.output_cache(out)
    cache.batch_repeat_interleave(num_return)
    return model.generate(
        input_ids=input_ids.repeat_interleave(num_return, 0), attention_mask=attention.repeat_interleave(num_return, 0),
        **compat.cache_kwargs(cache), generation_config=generation_config, synced_gpus=synced_gpus,
        stopping_criteria=stopping_criteria,
    )


def is_prompt_learning(model: Any) -> bool:
    """A PEFT prompt-learning model (prefix or prompt tuning): its virtual tokens live in the cache, so the prompt
    cannot be prefilled outside `generate`."""
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


@contextmanager
def router_logits_off(model: Any) -> Iterator[None]:
    """MoE models trained with their auxiliary loss (`output_router_logits=True`, as SFTTrainer sets it) compute
    that loss in every forward, over the whole attention mask; a cached decoding step feeds fewer tokens than the mask
    covers, so the loss fails. Sampling needs no router logits: they are off while generating, then restored."""
    configs = [c for c in {id(c): c for c in (model.config, model.config.get_text_config())}.values()
               if getattr(c, "output_router_logits", False)]
    for c in configs:
        c.output_router_logits = False
    try:
        yield
    finally:
        for c in configs:
            c.output_router_logits = True


@torch.no_grad()
def generate(model: Any, tokenizer: PreTrainedTokenizerBase, prompt_ids: list[list[int]], num_return: int,
             generation_config: GenerationConfig, batch_size: int, synced_gpus: bool = False,
             desc: str = "Generating", show_progress: bool = True, share_prefill: bool = True,
             compact: bool = True, stop_strings: tuple[str, ...] = (),
             noise_seed: int | None = None) -> list[list[Generated]]:
    """Sample `num_return` completions for each prompt; returns one list per prompt, in input order.

    `batch_size` counts prompts per batch; with `share_prefill`, each prompt is encoded once for all of its samples;
    with `compact` (and a config it implements), finished samples leave the batch (`sample_compacting`), else
    `model.generate` samples. A sample that produces one of `stop_strings` stops there (transformers'
    `StopStringCriteria`); its text is cut before the stop string and it counts as finished.

    With `noise_seed`, sample j of prompt i draws its tokens by inverse CDF from its own uniforms, seeded by
    `(noise_seed, i, j)` and independent of batching: two models given the same prompts and `noise_seed` are sampled
    with common random numbers (`sampling.draw`). Only the compacting sampler implements this; a call that needs
    `generate` raises.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    share_prefill = share_prefill and not is_prompt_learning(model)
    # Similar lengths share a batch, so little of each batch is padding.
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]), reverse=True)
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    results: list[list[Generated] | None] = [None] * len(prompt_ids)
    stopping = StopStringCriteria(tokenizer, list(stop_strings)) if stop_strings else None
    was_training = model.training
    model.eval()
    try:
        with router_logits_off(model):
            for idx in tqdm(batches, desc=desc, disable=not show_progress, leave=False):
                uniforms = None if noise_seed is None else common_uniforms(
                    noise_seed, idx, num_return, generation_config.max_new_tokens)
                samples = _generate_batch(model, [prompt_ids[i] for i in idx], pad, num_return, generation_config,
                                          synced_gpus, share_prefill, compact, stopping, uniforms)
                for i, prompt_samples in zip(idx, samples):
                    results[i] = prompt_samples
    finally:
        model.train(was_training)
    configured = generation_config.eos_token_id
    stop = set(eos_ids(model, tokenizer)) | set([configured] if isinstance(configured, int) else configured or [])
    out = [[Generated(tokenizer.decode(ids, skip_special_tokens=True), ids, finished)
            for ids, finished in (cut_at_stop(seq, stop) for seq in row)] for row in results]  # type: ignore[union-attr]
    return [[_cut_text(g, tokenizer, stop_strings) for g in row] for row in out] if stop_strings else out


def common_uniforms(noise_seed: int, prompts: list[int], num_return: int, steps: int | None) -> torch.Tensor:
    """`(len(prompts) * num_return, steps)` uniforms in [0, 1): row `(i, j)` from numpy's stream seeded by
    `(noise_seed, prompt index, j)`, so a sample's draws do not depend on which batch it lands in."""
    if steps is None:
        raise ValueError("Sampling with common random numbers needs `max_new_tokens` in the generation config.")
    rows = [np.random.default_rng([noise_seed, i, j]).random(steps) for i in prompts for j in range(num_return)]
    return torch.from_numpy(np.stack(rows)).float()


def _cut_text(g: Generated, tokenizer: PreTrainedTokenizerBase, stop_strings: tuple[str, ...]) -> Generated:
    text, cut = cut_at_stop_strings(g.text, stop_strings)
    if not cut:
        return g
    return Generated(text, list(tokenizer(text, add_special_tokens=False)["input_ids"]), True)


def cut_at_stop(seq: list[int], stop: set[int]) -> tuple[list[int], bool]:
    """A sampled sequence up to its first stop token, and whether it had one."""
    cut = next((t for t, tok in enumerate(seq) if tok in stop), None)
    return (seq, False) if cut is None else (seq[:cut], True)


def _generate_batch(model: Any, prompts: list[list[int]], pad: int, num_return: int, config: GenerationConfig,
                    synced_gpus: bool, share_prefill: bool, compact: bool,
                    stopping: StopStringCriteria | None = None,
                    uniforms: torch.Tensor | None = None) -> list[list[list[int]]]:
    """Sample from left-padded prompts; the raw sampled ids, `num_return` lists per prompt."""
    device = next(model.parameters()).device
    width = max(map(len, prompts))
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention[row, width - len(ids) :] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    # Under synced_gpus every rank must run the same number of forwards, which `generate` arranges.
    sampling = resolved_sampling(config, model) if compact and share_prefill and not synced_gpus else None
    if sampling is not None and width > 1:
        completions = sample_compacting(model, input_ids, attention, num_return, config, sampling, stopping,
                                        uniforms)
    else:
        if uniforms is not None:
            raise ValueError(
                "Sampling with common random numbers (`noise_seed`) needs the compacting sampler, which this call "
                f"cannot use (generation config fields it does not implement: {sorted(_unsupported(config, model))}, "
                "or synced_gpus, or one-token prompts). Drop those fields or sample without `noise_seed`."
            )
        criteria = StoppingCriteriaList([stopping]) if stopping is not None else None
        if share_prefill and num_return > 1 and width > 1:
            out = _generate_shared_prefill(model, input_ids, attention, num_return, config, synced_gpus, criteria)
        else:
            config = copy.deepcopy(config)
            config.num_return_sequences = num_return
            out = model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                 synced_gpus=synced_gpus, stopping_criteria=criteria)
        completions = out[:, width:].tolist()
    return [completions[row * num_return : (row + 1) * num_return] for row in range(len(prompts))]


# What the compacting sampler implements. A generation config (the call's, or the model's where the call leaves a
# field unset, as `generate` merges them) that sets anything else is sampled by `generate` itself.
SAMPLING_FIELDS = ("do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty")
COMPACTABLE_FIELDS = {*SAMPLING_FIELDS, "max_new_tokens", "max_length", "eos_token_id", "pad_token_id", "bos_token_id",
                      "use_cache", "transformers_version", "_from_model_config"}


def resolved_sampling(config: GenerationConfig, model: Any) -> dict[str, Any] | None:
    """The sampling fields `generate` would use for `config` on `model`, or None when the compacting sampler cannot
    reproduce that call (beams, constraints, extra processors, ...)."""
    defaults = getattr(model, "generation_config", None) or GenerationConfig()
    if config.max_new_tokens is None or _unsupported(config, model):
        return None
    return {f: getattr(config, f) if getattr(config, f) is not None else getattr(defaults, f, None)
            for f in (*SAMPLING_FIELDS, "eos_token_id")}


def _unsupported(config: GenerationConfig, model: Any) -> set[str]:
    """The set fields of `config` (merged over the model's own, as `generate` merges them) that the compacting
    sampler does not implement."""
    defaults = getattr(model, "generation_config", None) or GenerationConfig()
    fields = {**defaults.to_diff_dict(), **config.to_diff_dict()}
    return {k for k, v in fields.items() if not (k.startswith("output_") and not v)} - COMPACTABLE_FIELDS


def _logits_processors(sampling: dict[str, Any]) -> LogitsProcessorList:
    """transformers' own processors up to top-k, in the order `generate` applies them (unset fields take `generate`'s
    defaults); top-p and min-p, which follow, are applied by `sampling.draw`."""
    processors = LogitsProcessorList()
    if sampling["repetition_penalty"] not in (None, 1.0):
        processors.append(RepetitionPenaltyLogitsProcessor(sampling["repetition_penalty"]))
    if sampling["do_sample"]:
        if sampling["temperature"] not in (None, 1.0):
            processors.append(TemperatureLogitsWarper(sampling["temperature"]))
        if _top_k(sampling):
            processors.append(TopKLogitsWarper(_top_k(sampling)))
    return processors


def _top_k(sampling: dict[str, Any]) -> int:
    return 50 if sampling["top_k"] is None else sampling["top_k"]  # `generate`'s default when unset


def sample_compacting(model: Any, input_ids: torch.Tensor, attention: torch.Tensor, num_return: int,
                      config: GenerationConfig, sampling: dict[str, Any],
                      stopping: StopStringCriteria | None = None,
                      uniforms: torch.Tensor | None = None) -> list[list[int]]:
    """Sample `num_return` completions per left-padded prompt, dropping each sample from the batch once it ends.

    `generate` keeps a finished sample in its static batch, computing pad tokens for it until the longest sample
    ends; with EOS-heavy sampling much of each batch is then idle. Here each prompt (all but its last token) is
    prefilled once, its KV cache repeated for its samples, and every decoding step runs on the unfinished samples
    only: a sample that ends is removed from the batch and from the cache. Each step applies transformers' own
    logits processors up to top-k, then draws from the top-p / min-p distribution `generate` would draw from
    (`sampling.draw`, tested against transformers' warpers) without sorting the vocabulary; greedy answers equal
    `generate`'s token for token (tested). With `uniforms` (one row per sample, one column per step), each draw is
    the inverse CDF of that sample's uniform for the step.
    """
    positions = attention.cumsum(-1) - 1
    positions.masked_fill_(attention == 0, 1)
    prefill = model(input_ids=input_ids[:, :-1], attention_mask=attention[:, :-1], position_ids=positions[:, :-1],
                    use_cache=True, logits_to_keep=1)
    cache = compat.output_cache(prefill)
    cache.batch_repeat_interleave(num_return)
    seen = input_ids.repeat_interleave(num_return, 0)  # prompt and sampled ids, for repetition_penalty
    attention = attention.repeat_interleave(num_return, 0)
    position = positions[:, -1:].repeat_interleave(num_return, 0)
    token = seen[:, -1:]
    rows = torch.arange(seen.shape[0], device=seen.device)  # each live sample's index in the output
    steps: list[tuple[torch.Tensor, torch.Tensor]] = []  # (rows, tokens) per step, read back once at the end
    eos = sampling["eos_token_id"]
    stop = torch.tensor([] if eos is None else [eos] if isinstance(eos, int) else list(eos), dtype=torch.long,
                        device=seen.device)
    processors = _logits_processors(sampling)
    top_p = sampling["top_p"] if sampling["top_p"] not in (None, 1.0) else None
    if uniforms is not None:
        uniforms = uniforms.to(seen.device)
    for step in range(config.max_new_tokens):
        logits = model(input_ids=token, attention_mask=attention, position_ids=position, **compat.cache_kwargs(cache),
                       use_cache=True).logits[:, -1, :].float()
        scores = processors(seen, logits)
        # Diverged weights give inf/NaN: on a GPU, `multinomial` would hit a device-side assert that poisons the
        # CUDA context, so such rows draw from a harmless stand-in and the step raises once it is read back.
        if sampling["do_sample"]:
            token, invalid = draw(scores, _top_k(sampling), top_p, sampling["min_p"],
                                  None if uniforms is None else uniforms[rows, step])
        else:
            invalid = invalid_rows(scores)
            token = scores.argmax(-1, keepdim=True)
        steps.append((rows, token[:, 0]))
        live = ~torch.isin(token[:, 0], stop)
        seen = torch.cat([seen, token], dim=-1)
        if stopping is not None:
            live &= ~stopping(seen, scores)
        attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=-1)
        position = position + 1
        any_invalid, all_live, any_live = torch.stack([invalid.any(), live.all(), live.any()]).tolist()  # one sync
        if any_invalid:
            raise RuntimeError("probability tensor contains inf or NaN: the next-token distribution is not finite.")
        if not all_live:
            if not any_live:
                break
            keep = live.nonzero()[:, 0]
            cache.batch_select_indices(keep)
            seen, attention, position, token, rows = (t[keep] for t in (seen, attention, position, token, rows))
    out: list[list[int]] = [[] for _ in range(input_ids.shape[0] * num_return)]
    for row, tok in zip(torch.cat([r for r, _ in steps]).tolist(), torch.cat([t for _, t in steps]).tolist()):
        out[row].append(tok)
    return out


@dataclass
class SamplingSettings:
    """How candidates are sampled: the one set of fields every generation path (training rounds, held-out report,
    profiling, benchmarks) builds its `GenerationConfig` from."""

    max_new_tokens: int
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    generation_kwargs: dict[str, Any] | None = None  # extra GenerationConfig arguments, applied last

    @classmethod
    def from_config(cls, args: Any) -> SamplingSettings:
        """The sampling fields of an `ActiveInheritanceConfig`."""
        return cls(max_new_tokens=args.max_completion_length, temperature=args.temperature, top_p=args.top_p,
                   top_k=args.top_k, repetition_penalty=args.repetition_penalty,
                   generation_kwargs=args.generation_kwargs)


def build_generation_config(settings: SamplingSettings, model: Any,
                            tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """A `GenerationConfig` from `settings`, stopping at the model's and the tokenizer's EOS tokens."""
    kwargs: dict[str, Any] = dict(
        do_sample=settings.do_sample, max_new_tokens=settings.max_new_tokens,
        repetition_penalty=settings.repetition_penalty, eos_token_id=eos_ids(model, tokenizer),
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    kwargs.update(settings.generation_kwargs or {})
    return GenerationConfig(**kwargs)
