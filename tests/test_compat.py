"""Each private upstream symbol in `ail_trainer/compat.py`, checked so that an upgrade changing it fails by name."""

import inspect
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def params(func) -> list[str]:
    return list(inspect.signature(func).parameters)


def test_sft_trainer_prepare_dataset():
    from trl import SFTTrainer

    assert params(SFTTrainer._prepare_dataset) == [
        "self", "dataset", "processing_class", "args", "packing", "formatting_func", "dataset_name"
    ], "trl.SFTTrainer._prepare_dataset changed its signature; update ail_trainer.compat.prepare_sft_dataset"


def test_trainer_get_num_items_in_batch():
    from transformers import Trainer

    assert params(Trainer._get_num_items_in_batch) == ["self", "batch_samples", "device"], (
        "transformers.Trainer._get_num_items_in_batch changed; update ail_trainer.compat.num_items_in_batch"
    )


def test_sft_trainer_metrics_reach_the_log(tiny, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from ail_trainer import compat

    model, tok = tiny
    trainer = SFTTrainer(model, SFTConfig(str(tmp_path), report_to=[], bf16=False, use_cpu=True),
                         train_dataset=Dataset.from_dict({"text": ["hello there"]}), processing_class=tok)
    assert isinstance(trainer._metrics["train"], defaultdict), "trl.SFTTrainer._metrics changed its structure"
    trainer.model.train()  # SFTTrainer.log reads the training metrics in train mode
    compat.record_train_metric(trainer, "ai/probe", 2.0)
    compat.record_train_metric(trainer, "ai/probe", 4.0)
    trainer.log({"loss": 1.0})
    assert trainer.state.log_history[-1]["ai/probe"] == 3.0, "trl.SFTTrainer.log no longer averages _metrics"


def test_trl_prepare_deepspeed():
    from trl.models.utils import prepare_deepspeed

    assert params(prepare_deepspeed) == ["model", "accelerator"], (
        "trl.models.utils.prepare_deepspeed changed; update ail_trainer.compat.prepare_deepspeed"
    )


def test_transformers_unset_hf_deepspeed_config():
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    assert params(unset_hf_deepspeed_config) == [], "transformers' unset_hf_deepspeed_config changed"
    unset_hf_deepspeed_config()


def test_installed_versions_are_within_the_tested_range():
    """The installed transformers, TRL and Accelerate are inside pyproject's declared range, which has an upper bound
    (the newest tested release); CI runs this on the newest and on the lowest supported set."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for req in map(Requirement, deps):
        if req.name in ("transformers", "trl", "accelerate"):
            assert req.specifier.contains(version(req.name)), f"{req.name} {version(req.name)} is not in {req}"
            assert "<" in str(req.specifier), f"{req} has no upper bound"


def test_no_runtime_module_imports_the_test_helpers():
    """`ail_trainer/testing.py` builds toy models for tests and benchmarks; nothing the library runs imports it."""
    import ast

    offenders = []
    for path in (ROOT / "ail_trainer").rglob("*.py"):
        if path.name == "testing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [f"{'.' * node.level}{node.module or ''}"] + [a.name for a in node.names]
            if any(n.split(".")[-1] == "testing" for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_checkpointing_names_follow_the_installed_transformers(tiny, make_args):
    """5.18 renamed gradient checkpointing to activation checkpointing; 5.17 has only the old names."""
    from packaging.version import Version
    from transformers import __version__

    from ail_trainer import compat

    expected = "gradient_checkpointing" if Version(__version__) < Version("5.18") else "activation_checkpointing"
    assert compat.CHECKPOINTING_ARG == expected
    model, _ = tiny
    args = make_args(**{expected: True, f"{expected}_kwargs": {"use_reentrant": False, "every_n_layers": 2}})
    assert not compat.checkpointing_is_on(model)
    compat.checkpointing_on(model, args)
    assert compat.checkpointing_is_on(model)
    layers = model.model.layers
    assert [layer.gradient_checkpointing for layer in layers] == [i % 2 == 0 for i in range(len(layers))]
    compat.checkpointing_off(model)
    assert not compat.checkpointing_is_on(model)


def test_cache_name_follows_the_installed_transformers(tiny):
    """5.24 renamed the key-value cache `past_key_values` -> `cache` (the old name warns there)."""
    import torch
    from packaging.version import Version
    from transformers import __version__

    from ail_trainer import compat

    expected = "cache" if Version(__version__) >= Version("5.24") else "past_key_values"
    assert compat.CACHE_NAME == expected
    model, _ = tiny
    out = model(input_ids=torch.tensor([[1, 5, 6]]), use_cache=True)
    again = model(input_ids=torch.tensor([[7]]), use_cache=True, **compat.cache_kwargs(compat.output_cache(out)))
    assert again.logits.shape[1] == 1 and compat.output_cache(again).get_seq_length() == 4
