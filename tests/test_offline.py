"""candidate_generation='offline', the paper's protocol: one round samples and selects before training, and the
same winners train every epoch; nothing is sampled again."""

import json
from pathlib import Path

import pytest
from datasets import Dataset, IterableDataset

import ail_trainer.sources as sources_module
from ail_trainer import ActiveInheritanceTrainer
from ail_trainer.records import read_round
from ail_trainer.report import write_card

PROMPTS = [[{"role": "user", "content": p}] for p in
           ("the cat sat", "a dog ran", "the sun rose", "a bird sang", "rain fell", "the wind blew")]


def trained_texts(trainer, tok) -> dict[int, str]:
    """What each prompt's winner trains on this round: its completion tokens, decoded."""
    return {i: tok.decode([t for t, label in zip(rows[0]["input_ids"], rows[0]["labels"]) if label != -100],
                          skip_special_tokens=True).strip() for i, rows in trainer._winners.items()}


def run(tiny, make_args, monkeypatch, mode):
    model, tok = tiny
    calls: list[int] = []
    original = sources_module.generate

    def counting(*args, **kwargs):
        calls.append(len(args[2]))  # prompts sampled in this call
        return original(*args, **kwargs)

    monkeypatch.setattr(sources_module, "generate", counting)
    args = make_args(candidate_generation=mode, num_train_epochs=3, per_device_train_batch_size=2,
                     generation_steps=1, bf16=False)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
                                       processing_class=tok, reward_funcs=["length"])
    per_epoch: dict[int, dict[int, str]] = {}
    start_round = trainer._start_round

    def recording(epoch, r):
        start_round(epoch, r)
        per_epoch.setdefault(epoch, {}).update(trained_texts(trainer, tok))

    trainer._start_round = recording
    trainer.train()
    assert trainer.state.global_step == 9
    return trainer, calls, per_epoch, sorted(p.name for p in (Path(args.output_dir) / "rounds").glob("*.jsonl"))


def test_offline_samples_once_and_trains_the_same_winners_every_epoch(tiny, make_args, monkeypatch):
    trainer, calls, per_epoch, files = run(tiny, make_args, monkeypatch, "offline")
    assert calls == [len(PROMPTS)]  # one generation call, every prompt, before the first step; none after
    assert files == ["round-00000.jsonl"] and len(trainer.round_stats) == 1
    pool = {rec.prompt_idx: rec.winning()[0].text.strip() for rec in read_round(trainer.args.output_dir, 0)}
    assert set(pool) == set(range(len(PROMPTS)))
    assert per_epoch[0] == per_epoch[1] == per_epoch[2] == pool
    write_card(trainer, trainer.args.output_dir, "tiny", None)
    out = Path(trainer.args.output_dir)
    assert json.loads((out / "active_inheritance.json").read_text())["candidate_generation"] == "offline"
    assert "offline" in (out / "README.md").read_text()


def test_online_samples_every_round(tiny, make_args, monkeypatch):
    trainer, calls, per_epoch, files = run(tiny, make_args, monkeypatch, "online")
    assert len(calls) == 9 and len(files) == 9 and len(trainer.round_stats) == 9
    assert per_epoch[0] != per_epoch[1]  # fresh samples from an updated policy


def test_offline_refuses_a_stream_and_unknown_modes(tiny, make_args):
    model, tok = tiny
    stream = IterableDataset.from_generator(lambda: ({"prompt": p} for p in PROMPTS))
    with pytest.raises(ValueError, match="offline"):
        ActiveInheritanceTrainer(model, make_args(candidate_generation="offline", max_steps=2, bf16=False),
                                 train_dataset=stream, processing_class=tok, reward_funcs=["length"])
    with pytest.raises(ValueError, match="candidate_generation must be one of"):
        make_args(candidate_generation="once", bf16=False)
