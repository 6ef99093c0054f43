"""ActiveInheritanceTrainer: SFTTrainer that trains on the best of k candidates, generated during training."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object
from datasets import Dataset
from datasets.utils import logging as datasets_logging
from transformers import TrainerCallback, TrainingArguments
from transformers.utils import logging
from trl import SFTConfig, SFTTrainer
from trl.models import unwrap_model_for_generation

from .checks import check_model_source, check_output_dir, check_resume_checkpoint
from .config import ActiveInheritanceConfig
from .data import as_completion, load_prompt_data, reference_text
from .distributed import check_backend, is_zero3, synced_generation
from .generation import build_generation_config, generate, render_prompts, truncate_prompts
from .records import read_round, set_aside_old_rounds, write_round
from .rewards import resolve_rewards
from .rewards.base import call_reward
from .rewards.registry import reward_name
from .schedule import RoundSchedule, ScheduleDataLoader
from .selection import combine, select
from .teachers import Teacher, load_teacher_model, place, resolve_teachers

logger = logging.get_logger(__name__)


class _SkippedStepCallback(TrainerCallback):
    """Restores the learning rates zeroed for an optimizer step that had no winner tokens on any process."""

    def __init__(self, trainer: ActiveInheritanceTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        saved = self.trainer._saved_lrs
        if saved is not None:
            for group, lr in zip(self.trainer.optimizer.param_groups, saved):
                group["lr"] = lr
            self.trainer._saved_lrs = None


class ActiveInheritanceTrainer(SFTTrainer):
    """Active inheritance (arXiv 2407.01490) as a drop-in [`~trl.SFTTrainer`].

    Each round, for every prompt, the trainer samples `args.num_candidates` completions from the current policy
    (and from `teachers`, a precomputed candidates column or the reference, as configured), scores them with
    `reward_funcs` and runs the SFT step on the best one(s). All `SFTTrainer` arguments keep their meaning.

    Args:
        reward_funcs: one or a list of rewards: registered names (`"mtld"`, `"length:unit=words"`), mappings
            (`{"name": "low_toxicity", "backend": "profanity"}`), dotted import paths, or callables with
            TRL's GRPO convention `f(prompts, completions, completion_ids, **columns) -> list[float | None]`.
            Every reward is maximized.
        teachers: extra generators: hub ids, local paths, loaded models or `(model, tokenizer)` pairs.
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
    ):
        args = self._convert_args(model, args)
        check_output_dir(args.output_dir)
        if isinstance(model, str):
            model = check_model_source(model)

        # Everything that can be checked without the model is checked before it loads.
        self.reward_funcs = resolve_rewards(reward_funcs)
        if not self.reward_funcs:
            raise ValueError(
                "ActiveInheritanceTrainer needs at least one reward: pass reward_funcs=, e.g. reward_funcs=['mtld'] "
                "or a callable f(prompts, completions, **kwargs) -> list[float]."
            )
        self.reward_names = self._unique_names([reward_name(f) for f in self.reward_funcs])
        self.reward_weights = self._weights(args)
        self.reward_constraints = self._constraints(args)
        if train_dataset is None:
            raise ValueError("`train_dataset` is required: a dataset with a 'prompt' or 'messages' column.")
        if formatting_func is not None:
            raise ValueError(
                "formatting_func is not supported: candidates are generated from prompts. Map your dataset to a "
                "'prompt' column (string or messages) instead."
            )
        self.prompt_data = load_prompt_data(train_dataset, args.candidates_column, args.include_reference)
        self.teachers: list[Teacher] = resolve_teachers(
            teachers, args.trust_remote_code, self.prompt_data.conversational
        )
        if args.teacher_mode == "replace" and not (
            self.teachers or args.candidates_column or args.include_reference
        ):
            raise ValueError(
                "teacher_mode='replace' leaves no candidate source: pass teachers=, set candidates_column, or "
                "set include_reference=True (or use teacher_mode='add')."
            )

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
        for teacher in self.teachers:
            load_teacher_model(teacher, args.model_init_kwargs, args.trust_remote_code)
            if is_zero3(self.accelerator):
                from trl.models.utils import prepare_deepspeed

                teacher.model = prepare_deepspeed(teacher.model, self.accelerator)

        self.schedule: RoundSchedule | None = None
        self.round_stats: list[dict[str, float]] = []
        self._round_key: tuple[int, int] | None = None
        self._winners: dict[int, list[dict]] = {}
        self._resuming = False
        self._saved_lrs: list[float] | None = None
        self.add_callback(_SkippedStepCallback(self))
        self._preflight_rewards()

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    def _convert_args(model: Any, args: Any) -> ActiveInheritanceConfig:
        if args is None:
            name = model if isinstance(model, str) else model.config._name_or_path
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

    @staticmethod
    def _unique_names(names: list[str]) -> list[str]:
        seen: dict[str, int] = defaultdict(int)
        out = []
        for name in names:
            seen[name] += 1
            out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
        return out

    def _weights(self, args: ActiveInheritanceConfig) -> np.ndarray:
        if args.reward_weights is None:
            return np.ones(len(self.reward_funcs))
        if len(args.reward_weights) != len(self.reward_funcs):
            raise ValueError(
                f"reward_weights has {len(args.reward_weights)} values but there are {len(self.reward_funcs)} "
                f"rewards ({self.reward_names}); give one weight per reward."
            )
        return np.asarray(args.reward_weights, dtype=float)

    def _constraints(self, args: ActiveInheritanceConfig) -> dict[int, float]:
        unknown = set(args.reward_constraints or {}) - set(self.reward_names)
        if unknown:
            raise ValueError(
                f"reward_constraints names {sorted(unknown)}, which are not among the rewards {self.reward_names}. "
                "Add the reward to reward_funcs (with weight 0 to use it only as a constraint)."
            )
        return {self.reward_names.index(k): float(v) for k, v in (args.reward_constraints or {}).items()}

    def _placeholder_dataset(self) -> Dataset:
        """One row in the user's format, so SFTTrainer's set-up (chat template, masks, collator) sees real data."""
        data = self.prompt_data
        reference = data.references[0] if data.references is not None else as_completion("ok", data.conversational)
        return Dataset.from_dict({"prompt": [data.prompts[0]], "completion": [reference]})

    def _preflight_rewards(self) -> None:
        """Call every reward on a couple of known completions, so a broken reward fails before any generation."""
        n = min(2, len(self.prompt_data))
        if self.prompt_data.references is not None:
            texts = [reference_text(r) for r in self.prompt_data.references[:n]]
        else:
            texts = ["A short test answer."] * n
        texts = [t or "A short test answer." for t in texts]
        try:
            self._score(list(range(n)), texts, [self._encode(t) for t in texts])
        except (ValueError, TypeError) as err:
            raise type(err)(f"{err} (Found by a test call of the rewards on known text, before training.)") from err

    # ------------------------------------------------------------------ the schedule
    def get_train_dataloader(self) -> ScheduleDataLoader:
        a = self.args
        self.schedule = RoundSchedule(
            num_prompts=len(self.prompt_data), batch_size=a.per_device_train_batch_size,
            grad_accum=a.gradient_accumulation_steps, world_size=self.accelerator.num_processes,
            rank=self.accelerator.process_index, seed=a.data_seed if a.data_seed is not None else a.seed,
            generation_steps=a.generation_steps, drop_last=a.dataloader_drop_last,
        )
        return ScheduleDataLoader(self.schedule)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        check_resume_checkpoint(resume_from_checkpoint, self.args.output_dir)
        self._resuming = bool(resume_from_checkpoint)
        self._round_key = None
        if not self._resuming and self.args.save_candidate_records and self.accelerator.is_main_process:
            moved = set_aside_old_rounds(self.args.output_dir)
            if moved is not None:
                logger.warning(f"Records of an earlier run in {self.args.output_dir} were moved to {moved}.")
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
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
        batches = [self._winner_batch(b["prompt_idx"]) for b in raw]
        local = sum(int((b["labels"] != -100).sum()) for b in batches)
        total = int(self.accelerator.reduce(torch.tensor(local, device=device), reduction="sum").item())
        num_items = self._get_num_items_in_batch(batches, device)
        if total == 0:
            # Every prompt of this step was dropped: the step runs on masked placeholders with the learning rate
            # at zero, so no parameter moves and every process stays in step.
            logger.warning(f"Step {self.state.global_step + 1}: all prompts were dropped; the update is skipped.")
            self._saved_lrs = [g["lr"] for g in self.optimizer.param_groups]
            for group in self.optimizer.param_groups:
                group["lr"] = 0.0
            if num_items is not None:
                num_items = torch.ones_like(num_items) if torch.is_tensor(num_items) else 1
        return batches, num_items

    def _winner_batch(self, prompt_idx: list[int]) -> dict[str, torch.Tensor]:
        examples = [ex for i in prompt_idx for ex in self._winners.get(i, [])]
        if not examples:
            pad = self.processing_class.pad_token_id if hasattr(self.processing_class, "pad_token_id") else 0
            examples = [{"input_ids": [pad], "labels": [-100]}]
        return self.data_collator(examples)

    # ------------------------------------------------------------------ rounds
    def _start_round(self, epoch: int, r: int) -> None:
        schedule = self.schedule
        round_id = schedule.global_round(epoch, r)
        prompt_idx = schedule.round_prompts(epoch, r)
        records = None
        if self._resuming:  # any round the interrupted run finished is reused, never regenerated or rewritten
            records = [None]
            if self.accelerator.is_main_process:
                saved = read_round(self.args.output_dir, round_id)
                if saved is not None and sorted(x["prompt_idx"] for x in saved) == sorted(prompt_idx):
                    records = [saved]
            records = broadcast_object_list(records)[0]
            if records is not None:
                logger.info(f"Round {round_id}: loaded {len(records)} prompts' records from disk.")
        if records is None:
            records, timing = self._generate_round(round_id, epoch, prompt_idx)
            if self.args.save_candidate_records and self.accelerator.is_main_process:
                write_round(self.args.output_dir, round_id, records)
        else:
            timing = {}
        self._winners = self._prepare_winners(records, set(schedule.rank_prompts(epoch, r)), round_id)
        self._log_round(round_id, records, timing)
        self._round_key = (epoch, r)

    def _seed(self, round_id: int) -> int:
        return (self.args.seed * 1_000_003 + round_id * 7919 + self.accelerator.process_index) % (2**31)

    def _generate_round(self, round_id: int, epoch: int, prompt_idx: list[int]) -> tuple[list[dict], dict]:
        """Generate, score and select for this process's share of the round, then gather every record."""
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        per_rank = math.ceil(len(prompt_idx) / world)
        shard = prompt_idx[rank::world]
        # Every process runs the same number of generate calls (required by ZeRO-3); padding rows are dropped.
        shard_padded = shard + [prompt_idx[0]] * (per_rank - len(shard))
        prompts = [self.prompt_data.prompts[i] for i in shard_padded]
        candidates: list[list[dict]] = [[] for _ in shard_padded]

        start = time.perf_counter()
        devices = [self.accelerator.device] if self.accelerator.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed(round_id))
            if self.args.teacher_mode == "add":
                self._add_generated(candidates, self._generate_policy(prompts, round_id), "policy")
            for teacher in self.teachers:
                self._add_generated(candidates, self._generate_teacher(teacher, prompts, round_id), teacher.name)
        gen_time = time.perf_counter() - start
        gen_tokens = sum(c["num_tokens"] for cands in candidates for c in cands)
        for row, i in enumerate(shard_padded):
            if self.prompt_data.precomputed is not None:
                for text in self.prompt_data.precomputed[i]:
                    candidates[row].append(self._candidate(text, "precomputed"))
            if self.args.include_reference:
                candidates[row].append(self._candidate(reference_text(self.prompt_data.references[i]), "reference"))

        start = time.perf_counter()
        records = self._select(round_id, epoch, shard, candidates[: len(shard)])
        score_time = time.perf_counter() - start

        gathered = gather_object(records)
        times = gather_object([(gen_time, gen_tokens, score_time)])
        by_idx = {rec["prompt_idx"]: rec for rec in gathered}
        timing = {
            "generation_s": max(t[0] for t in times),
            "generated_tokens": sum(t[1] for t in times),
            "scoring_s": max(t[2] for t in times),
        }
        return [by_idx[i] for i in prompt_idx], timing

    def _candidate(self, text: str, source: str, ids: list[int] | None = None, finished: bool = True) -> dict:
        ids = self._encode(text) if ids is None else ids
        return {"text": text, "source": source, "ids": ids, "num_tokens": len(ids), "finished": finished}

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer(text, add_special_tokens=False)["input_ids"]

    @staticmethod
    def _add_generated(candidates: list[list[dict]], generated: list, source: str) -> None:
        for row, samples in enumerate(generated):
            for g in samples:
                candidates[row].append(
                    {"text": g.text, "source": source, "ids": g.ids, "num_tokens": len(g.ids), "finished": g.finished}
                )

    def _generate_policy(self, prompts: list[Any], round_id: int) -> list:
        tok = self._tokenizer
        prompt_ids = truncate_prompts(
            render_prompts(prompts, tok, self.prompt_data.conversational),
            self.args.max_prompt_length, "policy",
        )
        gather = self.args.ds3_gather_for_generation
        with unwrap_model_for_generation(self.model_wrapped, self.accelerator, gather_deepspeed3_params=gather) as m:
            with self.accelerator.autocast():
                return generate(
                    m, tok, prompt_ids, self.args.num_candidates, build_generation_config(self.args, m, tok),
                    self.args.generation_batch_size, synced_gpus=synced_generation(self.accelerator, gather),
                    desc=f"Round {round_id}: policy", show_progress=self.accelerator.is_local_main_process,
                    share_prefill=self.args.share_prefill,
                )

    def _generate_teacher(self, teacher: Teacher, prompts: list[Any], round_id: int) -> list:
        tok = teacher.tokenizer
        prompt_ids = truncate_prompts(
            render_prompts(prompts, tok, self.prompt_data.conversational), self.args.max_prompt_length, teacher.name
        )
        k = self.args.teacher_num_candidates or self.args.num_candidates
        desc = f"Round {round_id}: {teacher.name}"
        show = self.accelerator.is_local_main_process
        if is_zero3(self.accelerator):
            with unwrap_model_for_generation(teacher.model, self.accelerator) as m:
                return generate(m, tok, prompt_ids, k, build_generation_config(self.args, m, tok),
                                self.args.generation_batch_size, desc=desc, show_progress=show,
                                share_prefill=self.args.share_prefill)
        place(teacher.model, self.accelerator.device)
        try:
            with self.accelerator.autocast():
                config = build_generation_config(self.args, teacher.model, tok)
                return generate(teacher.model, tok, prompt_ids, k, config, self.args.generation_batch_size,
                                desc=desc, show_progress=show, share_prefill=self.args.share_prefill)
        finally:
            if self.args.offload_teachers and self.accelerator.device.type != "cpu":
                place(teacher.model, torch.device("cpu"))

    def _score(self, prompt_idx: list[int], texts: list[str], ids: list[list[int]]) -> np.ndarray:
        """Score candidates (one entry per candidate) with every reward; NaN where a reward returned None."""
        data = self.prompt_data
        prompts = [data.prompts[i] for i in prompt_idx]
        completions = [as_completion(t, data.conversational) for t in texts]
        columns = {name: [values[i] for i in prompt_idx] for name, values in data.columns.items()}
        scores = np.full((len(texts), len(self.reward_funcs)), np.nan)
        for j, (func, name) in enumerate(zip(self.reward_funcs, self.reward_names)):
            values = call_reward(func, name, len(texts), prompts=prompts, completions=completions,
                                 completion_ids=ids, trainer_state=self.state, **columns)
            scores[:, j] = [np.nan if v is None else v for v in values]
        return scores

    def _select(self, round_id: int, epoch: int, shard: list[int], candidates: list[list[dict]]) -> list[dict]:
        flat_idx = [i for i, cands in zip(shard, candidates) for _ in cands]
        flat = [c for cands in candidates for c in cands]
        scores = self._score(flat_idx, [c["text"] for c in flat], [c["ids"] for c in flat]) if flat else None
        records, offset = [], 0
        for i, cands in zip(shard, candidates):
            block = scores[offset : offset + len(cands)] if cands else np.zeros((0, len(self.reward_funcs)))
            offset += len(cands)
            combined = combine(block, self.reward_weights, self.args.reward_normalization)
            feasible = np.ones(len(cands), dtype=bool)
            for j, threshold in self.reward_constraints.items():
                feasible &= np.nan_to_num(block[:, j], nan=-np.inf) >= threshold
            winners = select(combined, feasible, self.args.top_n, self.args.min_score)
            records.append({
                "round": round_id, "epoch": epoch, "global_step": self.state.global_step, "prompt_idx": i,
                "prompt": self.prompt_data.prompts[i],
                "candidates": [
                    {
                        "text": c["text"], "source": c["source"], "num_tokens": c["num_tokens"],
                        "finished": c["finished"],
                        "scores": {n: (None if np.isnan(v) else float(v)) for n, v in zip(self.reward_names, row)},
                        "combined": None if np.isnan(s) else float(s), "feasible": bool(f),
                    }
                    for c, row, s, f in zip(cands, block, combined, feasible)
                ],
                "winners": winners,
                "winner": cands[winners[0]]["text"] if winners else None,
                "dropped": not winners,
            })
        return records

    def _prepare_winners(self, records: list[dict], mine: set[int], round_id: int) -> dict[int, list[dict]]:
        """Tokenize this process's winners with SFTTrainer's own preparation (chat template, EOS, masks)."""
        conv = self.prompt_data.conversational
        rows = [
            {"prompt": rec["prompt"], "completion": as_completion(rec["candidates"][w]["text"], conv),
             "_ai_prompt_idx": rec["prompt_idx"]}
            for rec in records if rec["prompt_idx"] in mine for w in rec["winners"]
        ]
        placeholder = not rows
        if placeholder:  # preparation synchronizes processes, so every process runs it
            rows = [{"prompt": records[0]["prompt"], "completion": as_completion("", conv), "_ai_prompt_idx": -1}]
        bars = datasets_logging.is_progress_bar_enabled()
        datasets_logging.disable_progress_bar()
        try:
            prepared = self._prepare_dataset(
                Dataset.from_list(rows), self.processing_class, self.args, False, None, f"round {round_id} winners"
            )
        finally:
            if bars:
                datasets_logging.enable_progress_bar()
        winners: dict[int, list[dict]] = defaultdict(list)
        if not placeholder:
            for ex in prepared.select_columns(["input_ids", "labels", "_ai_prompt_idx"]):
                winners[ex["_ai_prompt_idx"]].append({"input_ids": ex["input_ids"], "labels": ex["labels"]})
        return winners

    # ------------------------------------------------------------------ observability
    def _log_round(self, round_id: int, records: list[dict], timing: dict) -> None:
        stats: dict[str, float] = {"ai/round": float(round_id)}
        all_cands = [c for rec in records for c in rec["candidates"]]
        won = [rec["candidates"][w] for rec in records for w in rec["winners"]]
        for name in self.reward_names:
            every = [c["scores"][name] for c in all_cands if c["scores"][name] is not None]
            best = [c["scores"][name] for c in won if c["scores"][name] is not None]
            if every:
                stats[f"ai/{name}/candidates_mean"] = float(np.mean(every))
            if best:
                stats[f"ai/{name}/winners_mean"] = float(np.mean(best))
            if every and best:
                stats[f"ai/{name}/selection_gain"] = float(np.mean(best) - np.mean(every))
        stats["ai/dropped_fraction"] = float(np.mean([rec["dropped"] for rec in records]))
        stats["ai/winner_tokens_mean"] = float(np.mean([c["num_tokens"] for c in won])) if won else 0.0
        stats["ai/candidates_per_prompt"] = len(all_cands) / max(len(records), 1)
        if timing:
            stats["ai/generation_seconds"] = timing["generation_s"]
            stats["ai/scoring_seconds"] = timing["scoring_s"]
            if timing["generation_s"] > 0:
                stats["ai/generation_tokens_per_second"] = timing["generated_tokens"] / timing["generation_s"]
        self.round_stats.append(stats)
        for key, value in stats.items():
            self._metrics["train"][key].append(value)
        if stats["ai/dropped_fraction"] == 1.0:
            logger.warning(f"Round {round_id}: every prompt was dropped (min_score / no scored candidate); "
                           "its steps make no update.")
        if self.accelerator.is_main_process:
            summary = ", ".join(f"{k[3:]}={v:.4g}" for k, v in stats.items() if k != "ai/round")
            logger.info(f"Round {round_id}: {len(records)} prompts; {summary}")
            for rec in [r for r in records if not r["dropped"]][: self.args.num_completions_to_print]:
                best = rec["candidates"][rec["winners"][0]]
                logger.info(f"  winner ({best['source']}, score {best['combined']:.4g}): {best['text'][:200]!r}")
