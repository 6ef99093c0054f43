"""ActiveInheritanceTrainer: SFTTrainer that trains on the best of k candidates, generated during training.

The trainer decides *when* a round runs (`get_batch_samples`, at the first step of each round of the schedule) and
feeds its winners to the SFT step. What a round does is in `round.py`; where candidates come from, `sources.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from accelerate.utils import broadcast_object_list, gather_object
from datasets import Dataset, IterableDataset
from transformers import ProcessorMixin, TrainerCallback, TrainingArguments
from transformers.utils import logging
from trl import SFTConfig, SFTTrainer

from . import compat
from .checks import (
    check_model_source,
    check_output_dir,
    check_resume_checkpoint,
    check_some_source,
    check_streaming,
)
from .config import ActiveInheritanceConfig, as_config
from .data import PromptLoader, as_completion
from .distributed import check_backend, is_fsdp, is_zero3
from .endpoint import preflight_endpoint
from .kl import kl_penalty, reference_log_probs, reference_model
from .quiet import no_dataset_bars
from .records import RoundRecord, read_round, set_aside_old_rounds, write_round
from .rewards import resolve_rewards
from .rewards.model import RewardModel
from .rewards.registry import reward_name
from .round import RoundResult, log_round, preflight_rewards, round_stats, run_round, winner_rows
from .schedule import RoundSchedule, ScheduleDataLoader
from .selection import Selection
from .sources import CandidateSource, build_sources
from .stream import PromptStream
from .teachers import Endpoint, Teacher, load_teacher_model, resolve_teachers
from .updates import SkipEmptyUpdates, unwrap_skippable
from .winners import tokenize_winners, winner_batch

logger = logging.get_logger(__name__)


class ActiveInheritanceTrainer(SFTTrainer):
    """Active inheritance (arXiv 2407.01490) as a drop-in [`~trl.SFTTrainer`].

    Each round, for every prompt, the trainer samples `args.num_candidates` completions from the current policy
    (and from `teachers`, a precomputed candidates column or the reference, as configured), scores them with
    `reward_funcs` and runs the SFT step on the best one(s). All `SFTTrainer` arguments keep their meaning.

    Args:
        reward_funcs: one or a list of rewards: registered names (`"mtld"`, `"length:unit=words"`), mappings
            (`{"name": "low_toxicity", "backend": "profanity"}`), dotted import paths, or callables with
            TRL's GRPO convention `f(prompts, completions, completion_ids, **columns) -> list[float | None]`, or
            sequence-classification reward models (hub id, local folder or loaded `PreTrainedModel`) scoring
            prompt + completion by `logits[:, 0]`, as in `GRPOTrainer`. Every reward is maximized.
        teachers: extra generators: hub ids, local paths, built-in names, loaded models, `(model, tokenizer)`
            pairs, local teachers with options (`{"model": ..., "prompt_template": "question_answer", "stop_strings":
            [...], "num_candidates": ..., "name": ...}`, e.g. a base model prompted with the paper's template), or
            served models behind an OpenAI-compatible endpoint: `{"base_url": ..., "model": ..., "api_key_env": ...}`.
        reward_processing_classes: a tokenizer per reward (None for rewards that are not models), as in
            `GRPOTrainer`; a reward model defaults to its own tokenizer.
    """

    _tag_names = ["trl", "sft", "active-inheritance"]
    _name = "Active Inheritance"

    def __init__(
        self,
        model: Any,
        args: ActiveInheritanceConfig | SFTConfig | TrainingArguments | None = None,
        data_collator: Callable | None = None,
        train_dataset: Dataset | None = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        compute_loss_func: Callable | None = None,
        compute_metrics: Callable | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple = (None, None),
        optimizer_cls_and_kwargs: tuple | None = None,
        preprocess_logits_for_metrics: Callable | None = None,
        quantization_config: Any = None,
        peft_config: Any = None,
        formatting_func: Callable | None = None,
        *,
        reward_funcs: Any = None,
        teachers: list | None = None,
        reward_processing_classes: Any = None,
    ):
        args = as_config(model, args)
        # Everything that can be checked without the model is checked before it loads.
        check_output_dir(args.output_dir)
        if train_dataset is None:
            raise ValueError("`train_dataset` is required: its prompts are what each round samples candidates for.")
        if isinstance(model, str):
            model = check_model_source(model, trust_remote_code=args.trust_remote_code)
        self.reward_funcs = resolve_rewards(reward_funcs, required=True, processing_classes=reward_processing_classes)
        self.selection = Selection.from_config([reward_name(f) for f in self.reward_funcs], args)
        self.reward_names = self.selection.reward_names
        self.reward_weights = self.selection.weights
        load = PromptLoader(args, model, processing_class, formatting_func)
        self.stream: PromptStream | None = None
        if isinstance(train_dataset, IterableDataset):
            check_streaming(args)
            if args.candidate_generation == "offline":
                raise ValueError("candidate_generation='offline' samples every prompt once before training, which a "
                                 "streamed IterableDataset cannot offer; use 'online' or a map-style Dataset.")
            self.stream = PromptStream(train_dataset, load)
            self.prompt_data = self.stream.take(args.per_device_train_batch_size)
        else:
            self.prompt_data = load(train_dataset)
        self.teachers = resolve_teachers(teachers, args.trust_remote_code, self.prompt_data.conversational)
        check_some_source(args, self.teachers)
        self.endpoint_supports_n = {t.name: preflight_endpoint(t, self.prompt_data.conversational)
                                    for t in self.teachers if isinstance(t, Endpoint)}

        with no_dataset_bars():  # SFTTrainer prepares the one-row placeholder: its bars would say "1 examples"
            super().__init__(
                model, args=args, data_collator=data_collator, train_dataset=self._placeholder_dataset(),
                eval_dataset=eval_dataset, processing_class=processing_class, compute_loss_func=compute_loss_func,
                compute_metrics=compute_metrics, callbacks=callbacks, optimizers=optimizers,
                optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
                preprocess_logits_for_metrics=preprocess_logits_for_metrics, quantization_config=quantization_config,
                peft_config=peft_config,
            )
        check_backend(self.accelerator, self.args)
        self.train_dataset = self.prompt_data.to_dataset()
        self.tokenizer_for_text = (
            self.processing_class.tokenizer if isinstance(self.processing_class, ProcessorMixin)
            else self.processing_class
        )
        for teacher in [t for t in self.teachers if isinstance(t, Teacher)]:
            load_teacher_model(teacher, args.model_init_kwargs, args.trust_remote_code)
            if is_zero3(self.accelerator):
                teacher.model = compat.prepare_deepspeed(teacher.model, self.accelerator)
        for func in self.reward_funcs:
            if isinstance(func, RewardModel):  # placed as GRPOTrainer places reward models
                if is_zero3(self.accelerator):
                    func.model = compat.prepare_deepspeed(func.model, self.accelerator)
                func.device = self.accelerator.device
                func.offload = args.offload_teachers and self.accelerator.device.type != "cpu"
        self.sources: list[CandidateSource] = build_sources(self)
        self.ref_model = self._reference_model() if args.beta > 0 else None

        self.schedule: RoundSchedule | None = None
        self.round_stats: list[dict[str, float]] = []
        self._round_key: tuple[int, int] | None = None
        self._winners: dict[int, list[dict]] = {}
        self._offline_pool: list[RoundRecord] | None = None  # round 0's records, reused every epoch when offline
        self._resuming = False
        self._skip_update = False
        self.add_callback(SkipEmptyUpdates(self))
        preflight_rewards(self.reward_funcs, self.reward_names, self.prompt_data, self.encode, self.state)

    # ------------------------------------------------------------------ set-up
    def _placeholder_dataset(self) -> Dataset:
        """One row in the user's format, so SFTTrainer's set-up (chat template, masks, collator) sees real data."""
        data = self.prompt_data
        reference = data.references[0] if data.references is not None else as_completion("ok", data.conversational)
        return Dataset.from_dict({"prompt": [data.prompts[0]], "completion": [reference]})

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` in the policy tokenizer (what rewards receive as `completion_ids`)."""
        return self.tokenizer_for_text(text, add_special_tokens=False)["input_ids"]

    # ------------------------------------------------------------------ when rounds run
    def get_train_dataloader(self) -> ScheduleDataLoader:
        a = self.args
        # A stream has no length: its prompts are numbered in stream order, for max_steps steps.
        world = self.accelerator.num_processes
        streamed = a.max_steps * a.gradient_accumulation_steps * a.per_device_train_batch_size * world
        self.schedule = RoundSchedule(
            num_prompts=streamed if self.stream else len(self.prompt_data), batch_size=a.per_device_train_batch_size,
            grad_accum=a.gradient_accumulation_steps, world_size=self.accelerator.num_processes,
            rank=self.accelerator.process_index, seed=a.data_seed if a.data_seed is not None else a.seed,
            generation_steps=None if self.offline else a.generation_steps, drop_last=a.dataloader_drop_last,
            shuffle=self.stream is None,
        )
        return ScheduleDataLoader(self.schedule)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        check_resume_checkpoint(resume_from_checkpoint, self.args.output_dir)
        self._resuming = bool(resume_from_checkpoint)
        self._round_key = None
        self._offline_pool = None
        if not self._resuming and self.args.save_candidate_records and self.accelerator.is_main_process:
            moved = set_aside_old_rounds(self.args.output_dir)
            if moved is not None:
                logger.warning(f"Records of an earlier run in {self.args.output_dir} were moved to {moved}.")
        # a second train() builds its schedule on the optimizer itself; SkipEmptyUpdates wraps both again
        self.optimizer, self.lr_scheduler = unwrap_skippable(self.optimizer), unwrap_skippable(self.lr_scheduler)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """Swap the schedule's prompt indices for winner batches, running a round first when one starts."""
        raw = []
        for _ in range(num_batches):
            try:
                raw.append(next(epoch_iterator))
            except StopIteration:
                break
        if not raw:
            return raw, None
        key = (raw[0]["epoch"], raw[0]["round"])
        if key != self._round_key:
            self._start_round(*key)
        batches = [winner_batch(self, self._winners, b["prompt_idx"]) for b in raw]
        local = sum(int((b["labels"] != -100).sum()) for b in batches)
        total = int(self.accelerator.reduce(torch.tensor(local, device=device), reduction="sum").item())
        # Every prompt of this update was dropped on every process: no forward, backward, optimizer or scheduler
        # step runs (see `training_step` and `updates.py`), as if the update did not happen.
        self._skip_update = total == 0
        if self._skip_update:
            logger.warning(f"Step {self.state.global_step + 1}: all prompts were dropped; the update is skipped.")
            return batches, None
        return batches, compat.num_items_in_batch(self, batches, device)

    def _reference_model(self) -> Any:
        """The frozen initial policy for the KL penalty (`beta`), placed like the policy."""
        if is_fsdp(self.accelerator) or is_zero3(self.accelerator):
            raise ValueError("beta > 0 (the KL penalty) keeps an unsharded copy of the initial policy, which FSDP and "
                             "ZeRO-3 shard at load: it runs on one process, DDP and ZeRO-2. Use one of those, or "
                             "beta=0.")
        if self.compute_loss_func is not None or self.label_smoother is not None:
            raise ValueError("beta > 0 (the KL penalty) adds to SFTTrainer's own token loss; it cannot combine with "
                             "`compute_loss_func` or `label_smoothing_factor`. Drop one of them.")
        ref = reference_model(self.model)
        return None if ref is None else ref.to(self.accelerator.device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """SFTTrainer's loss, plus `beta` times the KL penalty toward the initial policy while training.

        SFTTrainer's forward (its fused LM head: per-token log-probabilities, no full logits) is read through a
        forward hook, so the penalty costs one extra forward of the reference and nothing more."""
        if self.args.beta == 0 or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        captured: dict[str, Any] = {}
        hook = self.accelerator.unwrap_model(model).register_forward_hook(
            lambda module, args, output: captured.setdefault("output", output))
        try:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            hook.remove()
        loss, outputs = result if return_outputs else (result, None)
        fused = captured["output"]
        mask = fused.label_mask
        ref = reference_log_probs(self.ref_model, self.accelerator.unwrap_model(model), inputs)
        penalty, mean = kl_penalty(fused.log_probs, ref, mask,
                                   mask.sum() if num_items_in_batch is None else num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            penalty = penalty * self.accelerator.num_processes  # as SFTTrainer scales its CE loss
        compat.record_train_metric(self, "kl", mean)
        loss = loss + self.args.beta * penalty
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self._skip_update:
            return torch.zeros((), device=self.args.device)
        return super().training_step(model, inputs, num_items_in_batch)

    @property
    def offline(self) -> bool:
        return self.args.candidate_generation == "offline"

    def _start_round(self, epoch: int, r: int) -> None:
        rank_prompts = set(self.schedule.rank_prompts(epoch, r))
        if self.offline and self._offline_pool is not None:
            logger.info(f"Epoch {epoch}: training on round 0's winners again (candidate_generation='offline').")
            self._winners = tokenize_winners(self, winner_rows(self._offline_pool, rank_prompts, self.prompt_data), 0)
            self._round_key = (epoch, r)
            return
        # offline: the one round samples every prompt, whichever epoch a resumed run starts in
        round_id = 0 if self.offline else self.schedule.global_round(epoch, r)
        prompt_idx = self.schedule.round_prompts(0 if self.offline else epoch, r)
        if self.stream is not None:
            self.stream.fill(self.prompt_data, max(prompt_idx) + 1)
        records = self._saved_round(round_id, prompt_idx) if self._resuming else None
        result = None
        if records is None:
            result = self._run_round_on_all_processes(round_id, epoch, prompt_idx)
            records = result.records
            if self.args.save_candidate_records and self.accelerator.is_main_process:
                write_round(self.args.output_dir, round_id, records)
        if self.offline:
            self._offline_pool = records
        rows = winner_rows(records, rank_prompts, self.prompt_data)
        self._winners = tokenize_winners(self, rows, round_id)
        self._log_round(round_id, records, result)
        self._round_key = (epoch, r)

    def _saved_round(self, round_id: int, prompt_idx: list[int]) -> list[RoundRecord] | None:
        """On resume, a round the interrupted run finished is read back, never regenerated or rewritten."""
        records = [None]
        if self.accelerator.is_main_process:
            saved = read_round(self.args.output_dir, round_id)
            if saved is not None and sorted(x.prompt_idx for x in saved) == sorted(prompt_idx):
                records = [saved]
        records = broadcast_object_list(records)[0]
        if records is not None:
            logger.info(f"Round {round_id}: loaded {len(records)} prompts' records from disk.")
        return records

    def _run_round_on_all_processes(self, round_id: int, epoch: int, prompt_idx: list[int]) -> RoundResult:
        """Each process runs the round on its share of the prompts; every process then holds the whole round."""
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        device = self.accelerator.device
        mine = run_round(
            round_id, epoch, self.state.global_step, prompt_idx[rank::world], self.prompt_data, self.sources,
            self.reward_funcs, self.selection, trainer_state=self.state,
            seed=(self.args.seed * 1_000_003 + round_id * 7919 + rank) % (2**31),
            devices=[device] if device.type == "cuda" else [], pad_to=math.ceil(len(prompt_idx) / world),
        )
        by_idx = {rec.prompt_idx: rec for rec in gather_object(mine.records)}
        times = gather_object([(mine.generation_s, mine.generated_tokens, mine.scoring_s)])
        return RoundResult([by_idx[i] for i in prompt_idx], max(t[0] for t in times), sum(t[1] for t in times),
                           max(t[2] for t in times))

    # ------------------------------------------------------------------ observability
    def _log_round(self, round_id: int, records: list[RoundRecord], result: RoundResult | None) -> None:
        stats = round_stats(round_id, records, self.reward_names, result)
        self.round_stats.append(stats)
        for key, value in stats.items():
            compat.record_train_metric(self, key, value)
        log_round(round_id, records, stats, self.args.num_completions_to_print, self.accelerator.is_main_process)
