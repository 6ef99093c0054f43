"""ActiveInheritanceConfig: SFTConfig plus candidate generation, scoring and selection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments
from transformers.utils import logging
from trl import SFTConfig

from .compat import resolve_checkpointing_alias

NORMALIZATIONS = ("none", "zscore", "rank")
TEACHER_MODES = ("add", "replace")
CANDIDATE_GENERATION = ("online", "offline")
TRUNCATED_WINNERS = ("no_eos", "drop", "keep")
TEXT_SPLITS = ("sentence", "words", "fraction")
VLLM_MODES = ("colocate", "server")


def _bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def cpu_computes_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bf16 instructions (x86: AVX512-BF16 or AMX; Arm: BF16). Without them, CPU autocast
    emulates bf16 and runs several times slower than float32. True where the flags cannot be read."""
    try:
        flags = {f for line in cpuinfo.read_text().splitlines() if line.startswith(("flags", "Features"))
                 for f in line.partition(":")[2].split()}
    except OSError:
        return True
    return not flags or bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _accelerator_available() -> bool:
    import transformers.utils as tu

    return (torch.cuda.is_available() or tu.is_torch_xpu_available() or tu.is_torch_npu_available()
            or tu.is_torch_mlu_available())


@dataclass
class ActiveInheritanceConfig(SFTConfig):
    r"""
    Configuration for [`ActiveInheritanceTrainer`]: every [`~trl.SFTConfig`] field, plus the fields below.

    Each round samples `num_candidates` completions per prompt from the current policy (and from any teachers,
    precomputed candidates or the reference), scores them with the reward functions, and trains on the best.
    `per_device_train_batch_size` counts prompts: each contributes up to `top_n` winners to the step.

    > Differences from `SFTConfig`: `bf16` defaults to `True` only where a GPU supports it (asked for without one,
    > it trains and samples under CPU autocast where the CPU has bf16 instructions, else in float32),
    > `completion_only_loss` defaults to `True`, and `learning_rate` and `lr_scheduler_type` default to `1e-5` and
    > `"constant"`, the settings of every measured held-out transfer (docs/replication.md).
    """

    _VALID_DICT_FIELDS = SFTConfig._VALID_DICT_FIELDS + ["generation_kwargs", "reward_constraints"]

    # Parameters whose default values are overridden from SFTConfig
    learning_rate: float = field(
        default=1e-5,
        metadata={"help": "The initial learning rate for AdamW (SFTConfig: 2e-5)."},
    )
    lr_scheduler_type: str = field(
        default="constant",
        metadata={"help": "The scheduler type to use (SFTConfig: 'linear')."},
    )

    # Generation
    num_candidates: int = field(
        default=8,
        metadata={"help": "Completions sampled per prompt from the policy (and from each teacher)."},
    )
    max_prompt_length: int | None = field(
        default=512,
        metadata={"help": "Longest prompt in tokens; longer prompts keep their end and a warning is logged."},
    )
    max_completion_length: int = field(default=256, metadata={"help": "Maximum new tokens per candidate."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(
        default=1.0,
        metadata={"help": "Nucleus sampling probability; 1.0 samples the policy's own distribution."},
    )
    top_k: int = field(default=0, metadata={"help": "Top-k sampling; 0 disables it."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Repetition penalty; 1.0 disables it."})
    generation_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "Extra `GenerationConfig` arguments, overriding the fields above. With use_vllm they are "
                          "translated to vLLM `SamplingParams` (max_new_tokens, min_new_tokens, temperature, top_p, "
                          "top_k, min_p, repetition_penalty, stop_strings, do_sample, eos_token_id); any other key "
                          "is refused."}
    )
    prompt_template: str | None = field(
        default=None,
        metadata={
            "help": "How the policy is prompted to generate candidates: None uses its tokenizer's chat template "
            "(conversational prompts) or the raw string; 'question_answer' is the paper's base-model template "
            "('### Question: {prompt}\\n ### Answer: '); any other value is a Jinja chat template. Winners always "
            "train in the policy's own chat format. Teachers take their own `prompt_template` in their mapping."
        },
    )
    stop_strings: list[str] | None = field(
        default=None,
        metadata={"help": "Strings that end a policy candidate: it is cut before the string and counts as finished. "
                          "None: the named template's defaults ('question_answer': ['###'], where a base model goes "
                          "on to a next question)."},
    )
    generation_batch_size: int = field(
        default=16, metadata={"help": "Prompts sampled together on each process (each yields `num_candidates`): "
                              "larger batches are faster while memory lasts (benchmarks/bench_engines.py)."}
    )
    candidate_generation: str = field(
        default="online",
        metadata={
            "help": "'online': each round samples fresh candidates from the current policy (and the other sources), "
            "once per epoch or every `generation_steps`. 'offline': the paper's protocol: candidates for every prompt "
            "are sampled and selected once, from the initial sources, before the first step, and the same winners "
            "train every epoch (`generation_steps` is ignored). Passive inheritance is `num_candidates=1` offline."
        },
    )
    generation_steps: int | None = field(
        default=16,
        metadata={
            "help": "Optimizer steps per round: candidates for the next N steps' prompts are generated together, "
            "from the current policy. Every prompt is still regenerated once per epoch, and the first step waits "
            "for one round, not a whole epoch, however large the dataset. None: one round per epoch."
        },
    )
    share_prefill: bool = field(
        default=True,
        metadata={
            "help": "Encode each prompt once and copy its KV cache to all of its samples (instead of "
            "`num_return_sequences`, which repeats the prompt before the prefill). Set False for models whose "
            "cache cannot be repeated."
        },
    )
    ds3_gather_for_generation: bool = field(
        default=True,
        metadata={"help": "Under DeepSpeed ZeRO-3, gather the full weights for generation (faster, more memory)."},
    )

    # vLLM for the policy (GRPOConfig's field names; needs a GPU and `pip install vllm`)
    use_vllm: bool = field(
        default=False,
        metadata={"help": "Generate the policy's candidates with vLLM (TRL's `VLLMGeneration`) instead of HF "
                          "`generate`. Weights are synced once per round, before its generation."},
    )
    vllm_mode: str = field(
        default="colocate",
        metadata={"help": "'colocate': vLLM runs in the training processes and shares their GPUs; 'server': a "
                          "separate `trl vllm-serve` process generates."},
    )
    vllm_model_impl: str = field(default="vllm", metadata={"help": "vLLM model implementation: 'vllm' or "
                                                                    "'transformers'."})
    vllm_enable_sleep_mode: bool = field(
        default=False, metadata={"help": "Colocate: offload vLLM's weights and cache while training."}
    )
    vllm_server_base_url: str | None = field(
        default=None, metadata={"help": "Server mode: base URL of the vLLM server (overrides host and port)."}
    )
    vllm_server_host: str = field(default="0.0.0.0", metadata={"help": "Server mode: host of the vLLM server."})
    vllm_server_port: int = field(default=8000, metadata={"help": "Server mode: port of the vLLM server."})
    vllm_server_timeout: float = field(
        default=240.0, metadata={"help": "Server mode: seconds to wait for the vLLM server to come up."}
    )
    vllm_group_port: int = field(default=51216, metadata={"help": "Server mode: port of the weight-update group."})
    vllm_gpu_memory_utilization: float = field(
        default=0.3, metadata={"help": "Colocate: share of GPU memory vLLM reserves (weights, activations, cache)."}
    )
    vllm_max_model_length: int | None = field(
        default=None, metadata={"help": "Colocate: vLLM context length (prompt + completion); from the model if None."}
    )
    vllm_tensor_parallel_size: int = field(
        default=1, metadata={"help": "Colocate: tensor-parallel size of each vLLM instance."}
    )

    # Candidate sources
    teacher_mode: str = field(
        default="add",
        metadata={
            "help": "'add': the policy generates alongside any teachers; 'replace': the policy does not generate, "
            "and candidates come only from teachers, `candidates_column` and/or the reference."
        },
    )
    teacher_num_candidates: int | None = field(
        default=None, metadata={"help": "Candidates per prompt from each teacher; defaults to `num_candidates`."}
    )
    offload_teachers: bool = field(
        default=True,
        metadata={"help": "Keep teachers and reward models on the CPU between rounds, on the accelerator only to "
                          "generate or score."},
    )
    candidates_column: str | None = field(
        default=None, metadata={"help": "Dataset column of precomputed candidates: a list of strings per row, or of "
                          "{text, finished} mappings (`finished` false: cut at a length limit)."}
    )
    include_reference: bool = field(
        default=False,
        metadata={"help": "Add the dataset's own completion (or last assistant turn) to each prompt's candidates."},
    )

    # Language-modeling data
    text_prompt_split: str = field(
        default="sentence",
        metadata={
            "help": "How a language-modeling text (`dataset_text_field`, or `formatting_func`'s output) becomes a "
            "prompt to continue: 'sentence' (its first sentence), 'words' (its first `text_prompt_size` words) or "
            "'fraction' (that share of its words). The rest is the reference completion."
        },
    )
    text_prompt_size: float | None = field(
        default=None, metadata={"help": "Words for 'words' (default 32), share for 'fraction' (default 0.5)."}
    )

    # Scoring and selection
    reward_weights: list[float] | None = field(
        default=None, metadata={"help": "Weight of each reward in the combined score; all 1.0 by default."}
    )
    reward_normalization: str = field(
        default="none",
        metadata={"help": "Per-prompt normalization of each reward across candidates: 'none', 'zscore' or 'rank'."},
    )
    reward_constraints: dict[str, float] | str | None = field(
        default=None,
        metadata={
            "help": "Minimum raw value per reward name, e.g. {'low_toxicity': 0.9}: a candidate that breaks one "
            "loses to every candidate that keeps them all."
        },
    )
    top_n: int = field(default=1, metadata={"help": "Winners kept per prompt."})
    min_score: float | None = field(
        default=None, metadata={"help": "Winners whose combined score is below this are dropped for the round."}
    )

    beta: float = field(
        default=0.0,
        metadata={"help": "KL coefficient toward the initial policy on the winners' tokens (GRPOConfig's name; GRPO's "
                          "per-token k3 estimator), against the sharpening that training on the model's own samples "
                          "causes. 0 loads no reference model. Logged as `kl`."},
    )
    truncated_winners: str = field(
        default="no_eos",
        metadata={
            "help": "Winners that hit `max_completion_length` (no EOS): 'no_eos' trains them without the end-of-turn "
            "token SFT would append, so the model is not taught to stop mid-sentence; 'drop': such a candidate "
            "cannot win (the prompt trains on its best finished candidate, or is dropped); 'keep': train them with "
            "the end-of-turn token, as plain SFT would."
        },
    )

    # Records and logging
    save_candidate_records: bool = field(
        default=True, metadata={"help": "Write every round's candidates, scores and winners under output_dir/rounds."}
    )
    num_completions_to_print: int = field(default=2, metadata={"help": "Winners shown in the log each round."})

    completion_only_loss: bool | None = field(
        default=True, metadata={"help": "Compute the loss on winner completion tokens only (prompt tokens masked)."}
    )

    def __post_init__(self):
        if self.bf16 is None:
            self.bf16 = not self.fp16 and not self.use_cpu and _bf16_supported()
        elif self.bf16 and (self.use_cpu or not _accelerator_available()):
            if self.deepspeed:
                raise ValueError(
                    "bf16=True was requested with DeepSpeed but no GPU is available (or use_cpu=True). "
                    "Set bf16=False (--bf16 false) to run DeepSpeed in float32 on the CPU."
                )
            if cpu_computes_bf16():
                # CPU autocast: transformers accepts bf16 without a GPU only with use_cpu, where it runs anyway
                self.use_cpu = True
            else:
                logging.get_logger(__name__).warning(
                    "bf16=True, but this CPU has no bf16 instructions (AVX512-BF16, AMX or Arm BF16): autocast would "
                    "emulate bf16, several times slower than float32. Training in float32 instead (bf16=False).")
                self.bf16 = False
        resolve_checkpointing_alias(self)
        super().__post_init__()
        if self.completion_only_loss is None:
            self.completion_only_loss = True
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates}.")
        if self.teacher_num_candidates is not None and self.teacher_num_candidates < 1:
            raise ValueError(f"teacher_num_candidates must be >= 1, got {self.teacher_num_candidates}.")
        if self.max_completion_length < 1:
            raise ValueError(f"max_completion_length must be >= 1, got {self.max_completion_length}.")
        if self.max_prompt_length is not None and self.max_prompt_length < 1:
            raise ValueError(f"max_prompt_length must be >= 1 or None, got {self.max_prompt_length}.")
        if self.generation_batch_size < 1:
            raise ValueError(f"generation_batch_size must be >= 1, got {self.generation_batch_size}.")
        if self.generation_steps is not None and self.generation_steps < 1:
            raise ValueError(
                f"generation_steps must be >= 1 or None (once per epoch), got {self.generation_steps}."
            )
        if self.candidate_generation not in CANDIDATE_GENERATION:
            raise ValueError(f"candidate_generation must be one of {CANDIDATE_GENERATION}, got "
                             f"{self.candidate_generation!r}.")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0 (0 disables the KL penalty), got {self.beta}.")
        if self.top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {self.top_n}.")
        if self.truncated_winners not in TRUNCATED_WINNERS:
            raise ValueError(
                f"truncated_winners must be one of {TRUNCATED_WINNERS}, got {self.truncated_winners!r}."
            )
        if self.teacher_mode not in TEACHER_MODES:
            raise ValueError(f"teacher_mode must be one of {TEACHER_MODES}, got {self.teacher_mode!r}.")
        if self.reward_normalization not in NORMALIZATIONS:
            raise ValueError(
                f"reward_normalization must be one of {NORMALIZATIONS}, got {self.reward_normalization!r}."
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 (sampling), got {self.temperature}.")
        if self.vllm_mode not in VLLM_MODES:
            raise ValueError(f"vllm_mode must be one of {VLLM_MODES}, got {self.vllm_mode!r}.")
        if self.use_vllm:
            from .generation import SamplingSettings
            from .vllm_source import vllm_sampling_kwargs

            vllm_sampling_kwargs(SamplingSettings.from_config(self))  # names a key vLLM cannot take
        if self.text_prompt_split not in TEXT_SPLITS:
            raise ValueError(f"text_prompt_split must be one of {TEXT_SPLITS}, got {self.text_prompt_split!r}.")
        from .templates import PromptFormat

        PromptFormat.resolve(self.prompt_template, self.stop_strings)  # names the problem before any compute
        if self.text_prompt_size is not None and (
            self.text_prompt_size <= 0 or (self.text_prompt_split == "fraction" and self.text_prompt_size >= 1)
        ):
            raise ValueError(f"text_prompt_size must be > 0 (and < 1 for 'fraction'), got {self.text_prompt_size}.")


def as_config(model: Any, args: Any) -> ActiveInheritanceConfig:
    """`args` as an `ActiveInheritanceConfig`: a plain `SFTConfig` or `TrainingArguments` is converted (drop-in);
    None gives the defaults with `output_dir` named after the model."""
    if args is None:
        name = model if isinstance(model, str) else model.name_or_path
        return ActiveInheritanceConfig(f"{str(name).rstrip('/').split('/')[-1]}-AI")
    if isinstance(args, ActiveInheritanceConfig):
        return args
    if isinstance(args, TrainingArguments):
        values = args.to_dict()
        for key in values:
            if key.endswith("_token"):  # to_dict masks these
                values[key] = getattr(args, key)
        known = {f for f in ActiveInheritanceConfig.__dataclass_fields__}
        values = {k: v for k, v in values.items() if k in known}
        return ActiveInheritanceConfig(**values)
    raise TypeError(f"`args` must be an ActiveInheritanceConfig, SFTConfig or TrainingArguments, got {type(args)}.")
