"""Active-inheritance training: `accelerate launch recipes/train.py --config recipes/<objective>.yaml`.

With no arguments it runs the built-in offline default (a small local model and prompt set, no network).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import yaml
from accelerate import PartialState
from datasets import load_dataset, load_from_disk
from transformers import AutoTokenizer
from transformers.utils import logging
from trl import ModelConfig, ScriptArguments, TrlParser, get_peft_config

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.builtin import BUILTIN_DATASET, BUILTIN_INSTRUCTIONS, BUILTIN_MODEL
from ail_trainer.checks import check_model_source
from ail_trainer.prompt_sets import is_prompt_set, prompt_set_dataset
from ail_trainer.report import before_after, write_card

logger = logging.get_logger(__name__)
# The offline recipes ship inside the package (a wheel has no `recipes/` folder); `recipes/offline` links here.
PACKAGED_RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "offline"
DEFAULT_CONFIG = PACKAGED_RECIPES / "lexical_diversity.yaml"


@dataclass
class ActiveInheritanceScriptArguments(ScriptArguments):
    dataset_name: str | None = field(
        default=BUILTIN_DATASET,
        metadata={"help": "Hub dataset name, a local JSON/JSONL/Parquet/Arrow file or folder, 'builtin:prompts' "
                          "(short, for the toy model), 'builtin:instructions' (templated instructions), or a real "
                          "prompt set ('builtin:sharegpt', 'builtin:alpaca-eval', 'builtin:arena-hard', "
                          "'builtin:rtp')."},
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["mtld"],
        metadata={"help": "Rewards: names ('mtld', 'length:unit=words'), {name: ..., option: ...} mappings in YAML, "
                          "or dotted import paths ('my_pkg.my_module.my_reward')."},
    )
    teachers: list[str] | None = field(
        default=None,
        metadata={"help": "Teacher models that also generate candidates: hub ids, local paths, or served models "
                          "({base_url: http://host:8000/v1, model: name, api_key_env: MY_KEY} in YAML)."},
    )
    train_max_prompts: int | None = field(
        default=None, metadata={"help": "Train on at most this many prompts, a sample drawn with the run's seed."}
    )
    eval_split: str | None = field(
        default="test", metadata={"help": "Held-out split scored before and after training (None to skip)."}
    )
    eval_dataset_name: str | None = field(
        default=None, metadata={"help": "Dataset of the held-out split, if not `dataset_name`."}
    )
    eval_max_prompts: int = field(default=64, metadata={"help": "Held-out prompts scored before and after."})
    eval_samples_per_prompt: int = field(default=2, metadata={"help": "Samples per held-out prompt."})
    eval_top_p: float | None = field(
        default=None,
        metadata={"help": "top_p of the held-out samples, the same for both models (None: the run's `top_p`; the "
                          "paper evaluates at 0.9)."},
    )
    eval_coupled: bool = field(
        default=False,
        metadata={"help": "Sample both models' held-out answers with common random numbers: each (prompt, sample) "
                          "draws its tokens by inverse CDF from its own random stream, the same for both models, so "
                          "their answers differ only where the models do. Each answer is still an exact sample of "
                          "its model; the paired interval is narrower."},
    )
    eval_judges: list[str] = field(
        default_factory=list,
        metadata={"help": "Judges that did not select, scored on both models' held-out answers: 'fluency' (the "
                          "answer's NLL under Gemma 3 270M), 'fluency=<model>' (another causal LM) or 'toxblock'."},
    )
    eval_autocast: bool = field(
        default=False,
        metadata={"help": "Sample the held-out answers under the run's mixed-precision autocast (`bf16`), as its "
                          "candidates are sampled. Off by default: both models are sampled in float32, so the report "
                          "measures the models and not the training precision."},
    )

    def __post_init__(self):
        if hasattr(super(), "__post_init__"):  # TRL's ScriptArguments has none today
            super().__post_init__()
        if self.eval_top_p is not None and not 0 < self.eval_top_p <= 1:
            raise ValueError(f"eval_top_p must be in (0, 1], got {self.eval_top_p}. Set it to a nucleus mass such "
                             "as 0.9, or leave it unset to use the run's top_p.")


PARSER_TYPES = (ActiveInheritanceScriptArguments, ActiveInheritanceConfig, ModelConfig)


def resolve_config(path: str) -> str:
    """A config path, or the name of a packaged offline recipe (`tiny`, `offline/tiny.yaml`) if no such file exists."""
    if os.path.exists(path):
        return path
    packaged = PACKAGED_RECIPES / (Path(path).stem + ".yaml")
    if packaged.exists():
        return str(packaged)
    names = ", ".join(sorted(p.stem for p in PACKAGED_RECIPES.glob("*.yaml")))
    raise FileNotFoundError(f"Config file {path!r} does not exist. Check the path given to --config, or name one of "
                            f"the packaged offline recipes: {names}.")


def check_config_keys(path: str) -> None:
    """Fail on a YAML key no dataclass knows, naming the nearest valid key."""
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    valid = {f.name for t in PARSER_TYPES for f in fields(t)} | {"env"}
    for key in config:
        if key not in valid:
            near = difflib.get_close_matches(key, sorted(valid), n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise ValueError(f"Unknown key '{key}' in {path}.{hint}")


def resolve_model(name: str) -> str:
    """A local folder, a Hub id, or a built-in model's folder (converted on first use)."""
    return check_model_source(name)


def resolve_teacher(spec: str | dict) -> str | dict:
    """A model name (built-in names stay names, so records show them), or a mapping: a local teacher with options
    or an endpoint (YAML, or a JSON/YAML string on the command line)."""
    if isinstance(spec, str) and spec.strip().startswith("{"):
        spec = yaml.safe_load(spec)
    return spec


def load_data(args: ActiveInheritanceScriptArguments, split: str, name: str | None = None):
    """A split of a hub dataset, a local data file or folder, the built-in prompts or a real prompt set."""
    name = name or args.dataset_name
    if is_prompt_set(name):
        return prompt_set_dataset(name, split)
    if name in (BUILTIN_DATASET, BUILTIN_INSTRUCTIONS):
        from ail_trainer.prompts import instruction_dataset, prompt_dataset

        split = "train" if split == args.dataset_train_split else split
        return prompt_dataset(split) if name == BUILTIN_DATASET else instruction_dataset(split)
    path = Path(os.path.expanduser(name))
    if path.exists():
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists()):
            data = load_from_disk(str(path))
            return data[split] if hasattr(data, "keys") else data
        builder = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}
        if path.is_file():
            return load_dataset(builder.get(path.suffix, "json"), data_files=str(path), split="train")
        return load_dataset(str(path), split=split)
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(
            f"Dataset path {name!r} does not exist. Give an existing JSON/JSONL/Parquet/Arrow file or folder, a Hub "
            "dataset name, or builtin:prompts."
        )
    return load_dataset(name, args.dataset_config, split=split)


def setup_logging() -> None:
    """The run's own lines (conversion, each round's summary and winners) at INFO on the console; transformers'
    weight-loading bars off (generation and training keep theirs)."""
    import logging as py_logging

    log = py_logging.getLogger("ail_trainer")
    if not log.handlers:
        handler = py_logging.StreamHandler()
        handler.setFormatter(py_logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(py_logging.INFO)
        log.propagate = False
    logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> ActiveInheritanceTrainer:
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a in ("--config", "--help", "-h") or a.startswith("--config=") for a in argv):
        argv = ["--config", str(DEFAULT_CONFIG), *argv]  # the main job; the command line overrides its fields
    if "--config" in argv:
        i = argv.index("--config") + 1
        argv[i] = resolve_config(argv[i])
        check_config_keys(argv[i])
    parser = TrlParser(PARSER_TYPES)
    script_args, training_args, model_args = parser.parse_args_and_config(argv)

    reward_specs = [yaml.safe_load(r) if isinstance(r, str) and r.strip().startswith("{") else r
                    for r in script_args.reward_funcs]
    model_path = resolve_model(model_args.model_name_or_path or BUILTIN_MODEL)
    dtype = model_args.dtype
    init_kwargs = {"revision": model_args.model_revision, "attn_implementation": model_args.attn_implementation,
                   "dtype": dtype if dtype in ("auto", None) else getattr(torch, dtype)}
    training_args.model_init_kwargs = {
        **{k: v for k, v in init_kwargs.items() if v is not None}, **(training_args.model_init_kwargs or {})
    }
    train = load_data(script_args, script_args.dataset_train_split)
    if script_args.train_max_prompts is not None and script_args.train_max_prompts < len(train):
        train = train.shuffle(seed=training_args.seed).select(range(script_args.train_max_prompts))
    held_out, judges = None, None
    if script_args.eval_judges:  # built before training, so a bad name fails before any compute
        from ail_trainer.evaluation import build_judges

        judges = build_judges(script_args.eval_judges)
    if script_args.eval_split:
        try:
            held_out = load_data(script_args, script_args.eval_split, script_args.eval_dataset_name)
        except Exception as err:  # a dataset without that split still trains
            logger.warning(f"No held-out split {script_args.eval_split!r} ({err}); skipping the before/after report.")
    tokenizer = AutoTokenizer.from_pretrained(model_path, revision=model_args.model_revision,
                                              trust_remote_code=training_args.trust_remote_code)
    trainer = ActiveInheritanceTrainer(
        model_path, args=training_args, train_dataset=train, processing_class=tokenizer,
        peft_config=get_peft_config(model_args), reward_funcs=reward_specs,
        teachers=[resolve_teacher(t) for t in script_args.teachers or []],
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)

    state = PartialState()
    if state.is_main_process:
        tokenizer.save_pretrained(training_args.output_dir)
        report = None
        if held_out is not None:
            report = before_after(model_path, training_args.output_dir, held_out, trainer,
                                  script_args.eval_max_prompts, script_args.eval_samples_per_prompt,
                                  top_p=script_args.eval_top_p, coupled=script_args.eval_coupled,
                                  autocast=script_args.eval_autocast, judges=judges)
        write_card(trainer, training_args.output_dir, model_path, report)
        if report:
            print(report["table"])
            print(json.dumps({k: v for k, v in report.items() if k != "table"}))
    state.wait_for_everyone()
    return trainer


def cli() -> None:
    """The `ail-train` console script (its exit status is 0 on success, not the returned trainer)."""
    main()


if __name__ == "__main__":
    main()
