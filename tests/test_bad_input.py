"""A counted sweep of bad input, tried as a new user would: each fails before any generation or training compute,
with an error that names the problem and the fix. The docs' "Bad input" table is generated from `CASES`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import transformers
from datasets import Dataset

import ail_trainer.report
import ail_trainer.sources
from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.prompts import prompt_dataset
from ail_trainer.scripts.train import main

ROOT = Path(__file__).resolve().parents[1]
RECIPE = str(ROOT / "recipes" / "offline" / "tiny.yaml")
FAST = ["--max_steps", "1", "--num_candidates", "2", "--max_completion_length", "8", "--eval_max_prompts", "4"]


@dataclass
class Ctx:
    tiny: tuple
    tmp: Path
    make_args: Callable

    def trainer(self, dataset=None, reward_funcs=None, teachers=None, model=None, **config):
        model_obj, tok = self.tiny
        return ActiveInheritanceTrainer(
            model if model is not None else model_obj, self.make_args(**config),
            train_dataset=dataset if dataset is not None else prompt_dataset("train").select(range(4)),
            processing_class=tok, reward_funcs=["mtld"] if reward_funcs is None else reward_funcs, teachers=teachers,
        )

    def script(self, *argv):
        return main(["--config", RECIPE, "--output_dir", str(self.tmp / "script-out"), *FAST, *map(str, argv)])


@dataclass
class Case:
    id: str
    action: Callable[[Ctx], Any]
    problem: str  # regexes the message must match
    fix: str


def boom(completions, **kwargs):
    raise RuntimeError("scorer crashed")


def words_as_text(completions, **kwargs):
    return ["many"] * len(completions)


def not_a_number(completions, **kwargs):
    return [float("nan")] * len(completions)


def one_value(completions, **kwargs):
    return [1.0]


def conversational(n=4):
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": f"Question {i}?"}] for i in range(n)]})


def teacher_without_template(ctx: Ctx):
    model, tok = ctx.tiny
    plain = transformers.AutoTokenizer.from_pretrained(tok.name_or_path)
    plain.chat_template = None
    return ctx.trainer(dataset=conversational(), teachers=[(model, plain)])


def teacher_without_tokenizer(ctx: Ctx):
    folder = ctx.tmp / "teacher-weights-only"
    ctx.tiny[0].save_pretrained(folder)
    return ctx.trainer(teachers=[str(folder)])


def output_dir_under_a_file(ctx: Ctx):
    blocker = ctx.tmp / "a-file"
    blocker.write_text("not a folder")
    return ctx.trainer(output_dir=str(blocker / "out"))


def bad_yaml_key(ctx: Ctx):
    bad = ctx.tmp / "bad.yaml"
    bad.write_text(Path(RECIPE).read_text() + "num_candidate: 4\n")
    return main(["--config", str(bad)])


def config(**kw):
    return lambda ctx: ActiveInheritanceConfig(output_dir=str(ctx.tmp / "cfg"), **kw)


CASES = [
    # configuration values
    Case("num_candidates=0", config(num_candidates=0), r"num_candidates must be >= 1", r"got 0"),
    Case("top_p=1.5", config(top_p=1.5), r"top_p must be in \(0, 1\]", r"got 1.5"),
    Case("temperature=0", config(temperature=0.0), r"temperature must be > 0", r"got 0"),
    Case("top_n=0", config(top_n=0), r"top_n must be >= 1", r"got 0"),
    Case("generation_steps=0", config(generation_steps=0), r"generation_steps must be >= 1",
         r"None \(once per epoch\)"),
    Case("max_completion_length=0", config(max_completion_length=0), r"max_completion_length must be >= 1", r"got 0"),
    Case("generation_batch_size=0", config(generation_batch_size=0), r"generation_batch_size must be >= 1", r"got 0"),
    Case("reward_normalization='minmax'", config(reward_normalization="minmax"), r"reward_normalization",
         r"one of \('none', 'zscore', 'rank'\)"),
    Case("teacher_mode='mix'", config(teacher_mode="mix"), r"teacher_mode", r"one of \('add', 'replace'\)"),
    Case("bf16=True with DeepSpeed on a CPU",
         config(bf16=True, use_cpu=True, deepspeed={"zero_optimization": {"stage": 2}}),
         r"bf16=True was requested with DeepSpeed", r"Set bf16=False"),
    Case("unknown YAML key", bad_yaml_key, r"Unknown key 'num_candidate'", r"Did you mean 'num_candidates'"),
    Case("--config file missing", lambda ctx: main(["--config", str(ctx.tmp / "nope.yaml")]), r"does not exist",
         r"Check the path given to --config"),
    # datasets
    Case("endpoint teacher unreachable",
         lambda ctx: ctx.trainer(teachers=[{"base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 0}]),
         r"could not be reached", r"Start the server, or fix base_url"),
    Case("endpoint teacher key variable unset",
         lambda ctx: ctx.trainer(teachers=[{"base_url": "http://127.0.0.1:9/v1", "model": "m",
                                            "api_key_env": "AIL_UNSET_KEY_VARIABLE"}]),
         r"'AIL_UNSET_KEY_VARIABLE', which is not set", r"Export it"),
    Case("IterableDataset without max_steps",
         lambda ctx: ctx.trainer(dataset=prompt_dataset("train").to_iterable_dataset()), r"IterableDataset",
         r"set max_steps"),
    Case("text_prompt_split unknown", lambda ctx: ctx.trainer(text_prompt_split="paragraph"),
         r"text_prompt_split must be one of", r"'sentence'"),
    Case("dataset without a prompt", lambda ctx: ctx.trainer(dataset=Dataset.from_dict({"label": [1, 2]})),
         r"no usable prompt", r"Give a 'prompt' column"),
    Case("empty dataset", lambda ctx: ctx.trainer(dataset=Dataset.from_dict({"prompt": []})), r"is empty",
         r"at least one prompt"),
    Case("prompt column of numbers", lambda ctx: ctx.trainer(dataset=Dataset.from_dict({"prompt": [3, 4]})),
         r"a prompt must be a string or a non-empty list of messages, got 3", r"Map the column to text"),
    Case("messages without an assistant turn",
         lambda ctx: ctx.trainer(dataset=Dataset.from_dict({"messages": [[{"role": "user", "content": "Hi?"}]]})),
         r"has no assistant turn", r"Add one, or give a 'prompt' column"),
    Case("a list of dicts instead of a Dataset", lambda ctx: ctx.trainer(dataset=[{"prompt": "Hi?"}]),
         r"must be a `datasets.Dataset`, got list", r"Dataset.from_list"),
    Case("candidates_column of strings",
         lambda ctx: ctx.trainer(dataset=Dataset.from_dict({"prompt": ["Hi?"], "cands": ["one answer"]}),
                                 candidates_column="cands"),
         r"Row 0 of candidates_column 'cands' is 'one answer'", r"must be a list of strings"),
    Case("candidates_column missing", lambda ctx: ctx.trainer(candidates_column="answers"),
         r"'answers' is not a dataset column", r"Set it to the column"),
    Case("include_reference without a completion",
         lambda ctx: ctx.trainer(dataset=prompt_dataset("train", with_completion=False).select(range(4)),
                                 include_reference=True),
         r"include_reference=True needs a reference completion", r"a 'completion' column"),
    # models and teachers
    Case("missing model path", lambda ctx: ctx.script("--model_name_or_path", "/no/such/model"),
         r"Model path '/no/such/model' does not exist", r"local model folder"),
    Case("hub id while offline", lambda ctx: ctx.trainer(model="ail-nobody/not-a-cached-model"),
         r"'ail-nobody/not-a-cached-model' is not a local folder", r"hf download"),
    Case("eval_top_p=1.5", lambda ctx: ctx.script("--eval_top_p", "1.5"), r"eval_top_p must be in \(0, 1\]",
         r"such as 0.9, or leave it unset"),
    Case("missing dataset path", lambda ctx: ctx.script("--dataset_name", "./missing.jsonl"),
         r"Dataset path './missing.jsonl' does not exist", r"existing JSON/JSONL"),
    Case("missing teacher path", lambda ctx: ctx.trainer(teachers=["/no/such/teacher"]),
         r"Teacher 0 path '/no/such/teacher' does not exist", r"local model folder"),
    Case("teacher whose tokenizer cannot load", teacher_without_tokenizer,
         r"Could not load the tokenizer of teacher", r"holds a tokenizer"),
    Case("teacher without the chat format of the data", teacher_without_template,
         r"has no chat template, but the prompts are conversational", r"give it a prompt template"),
    Case("teacher_mode='replace' with no source", lambda ctx: ctx.trainer(teacher_mode="replace"),
         r"leaves no candidate source", r"pass teachers="),
    # rewards
    Case("no reward", lambda ctx: ctx.trainer(reward_funcs=[]), r"needs at least one reward",
         r"reward_funcs=\['mtld'\]"),
    Case("unknown reward name", lambda ctx: ctx.trainer(reward_funcs=["mtdl"]), r"Unknown reward 'mtdl'",
         r"Known rewards: .*mtld"),
    Case("reward that raises", lambda ctx: ctx.trainer(reward_funcs=[boom]), r"Reward 'boom' raised RuntimeError",
         r"Fix the reward function"),
    Case("reward that returns strings", lambda ctx: ctx.trainer(reward_funcs=[words_as_text]),
         r"Reward 'words_as_text' returned 'many'", r"return a float"),
    Case("reward that returns NaN", lambda ctx: ctx.trainer(reward_funcs=[not_a_number]),
         r"Reward 'not_a_number' returned nan", r"return a finite float"),
    Case("reward that returns too few values", lambda ctx: ctx.trainer(reward_funcs=[one_value]),
         r"returned 1 values for 2 completions", r"exactly one value per completion"),
    Case("reward_weights of the wrong length", lambda ctx: ctx.trainer(reward_weights=[1.0, 2.0]),
         r"reward_weights has 2 values", r"one weight per reward"),
    Case("reward_constraints naming an unknown reward",
         lambda ctx: ctx.trainer(reward_constraints={"toxicity": 0.9}), r"not among the rewards",
         r"Add the reward to reward_funcs"),
    # output and resume
    Case("unwritable output_dir", output_dir_under_a_file, r"is not writable", r"Choose a folder you can write to"),
    Case("resume_from_checkpoint pointing nowhere",
         lambda ctx: ctx.trainer().train(resume_from_checkpoint=str(ctx.tmp / "checkpoint-99")), r"does not exist",
         r"Give a checkpoint folder"),
    Case("resume_from_checkpoint=True without a checkpoint",
         lambda ctx: ctx.trainer().train(resume_from_checkpoint=True), r"holds no checkpoint-N folder",
         r"Start without resuming"),
    # base-model templates and the offline protocol
    Case("prompt_template that is neither a name nor Jinja", config(prompt_template="### Q: {prompt}"),
         r"neither a named template", r"Use 'question_answer'"),
    Case("stop_strings given as one string", config(stop_strings="###"), r"stop_strings must be a list",
         r"non-empty strings"),
    Case("local teacher mapping with an unknown key",
         lambda ctx: ctx.trainer(teachers=[{"model": ctx.tiny[1].name_or_path, "template": "question_answer"}]),
         r"unknown keys \['template'\]", r"a local teacher takes"),
    Case("candidate_generation='offline' with a stream",
         lambda ctx: ctx.trainer(dataset=prompt_dataset("train").to_iterable_dataset(), max_steps=2,
                                 candidate_generation="offline"),
         r"cannot offer", r"use 'online' or a map-style Dataset"),
    Case("candidate_generation unknown", config(candidate_generation="once"), r"candidate_generation must be",
         r"one of \('online', 'offline'\)"),
    Case("an unknown held-out judge", lambda ctx: ctx.script("--eval_judges", "fluent"), r"Unknown judge 'fluent'",
         r"'fluency', 'fluency=<causal LM path or id>' and 'toxblock'"),
    Case("a prompt set split it does not have", lambda ctx: ctx.script("--dataset_name", "builtin:sharegpt",
                                                                        "--eval_split", "none",
                                                                        "--dataset_train_split", "test"),
         r"builtin:sharegpt has no 'test' split", r"its splits are \['train'\]"),
]


@pytest.fixture
def compute_calls(monkeypatch):
    """Every generation and training entry point, replaced by a tripwire."""
    calls = []

    def tripwire(name):
        def fail(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} ran before the error")

        return fail

    monkeypatch.setattr(ail_trainer.sources, "generate", tripwire("policy/teacher generation"))
    monkeypatch.setattr(ail_trainer.report, "generate", tripwire("held-out generation"))
    monkeypatch.setattr(transformers.GenerationMixin, "generate", tripwire("model.generate"))
    monkeypatch.setattr(transformers.Trainer, "training_step", tripwire("training_step"))
    return calls


def test_the_sweep_is_at_least_25_distinct_inputs():
    assert len({c.id for c in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_before_compute_naming_problem_and_fix(case, tiny, tmp_path, make_args, compute_calls,
                                                               monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception) as info:
        case.action(Ctx(tiny, tmp_path, make_args))
    assert compute_calls == [], f"compute started before the error: {compute_calls}"
    message = str(info.value)
    assert not isinstance(info.value, AssertionError), message
    assert re.search(case.problem, message, re.S), message
    assert re.search(case.fix, message, re.S), message
