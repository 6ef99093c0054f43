import copy
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, load_dataset
from trl import SFTConfig

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.prompts import prompt_dataset
from ail_trainer.records import read_round, round_path


def count_e(completions, **kwargs):
    return [float(str(c).count("e")) for c in completions]


def make_trainer(tiny, make_args, dataset=None, reward_funcs=(count_e,), **kw):
    model, tok = tiny
    trainer_kw = {k: kw.pop(k) for k in ("teachers",) if k in kw}
    args = make_args(**kw)
    dataset = dataset if dataset is not None else prompt_dataset("train").select(range(8))
    return ActiveInheritanceTrainer(model, args, train_dataset=dataset, processing_class=tok,
                                    reward_funcs=list(reward_funcs), **trainer_kw)


def test_winner_is_argmax_and_records_reload(tiny, make_args):
    trainer = make_trainer(tiny, make_args, reward_funcs=[count_e, "mtld"], reward_weights=[1.0, 0.5])
    trainer.train()
    path = round_path(trainer.args.output_dir, 0)
    records = load_dataset("json", data_files=str(path), split="train")
    assert len(records) == 8 and sorted(records["prompt_idx"]) == list(range(8))
    for rec in records:
        cands = rec["candidates"]
        assert len(cands) == 3 and {c["source"] for c in cands} == {"policy"}
        combined = [c["scores"]["count_e"] + 0.5 * c["scores"]["mtld"] for c in cands]
        assert [c["combined"] for c in cands] == pytest.approx(combined)
        assert rec["winners"] == [int(np.argmax(combined))]
        assert rec["winner"] == cands[rec["winners"][0]]["text"]
        assert cands[0]["scores"]["count_e"] == cands[0]["text"].count("e")
    stats = trainer.round_stats[0]
    assert stats["ai/count_e/winners_mean"] >= stats["ai/count_e/candidates_mean"]
    assert stats["ai/dropped_fraction"] == 0.0


def test_loss_covers_winner_completion_tokens_only_and_params_change(tiny, make_args):
    # every 8-token winner here is cut off; "keep" trains it as plain SFT would, with EOS (see test_truncated_winners)
    trainer = make_trainer(tiny, make_args, max_steps=1, truncated_winners="keep")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    tok = trainer.processing_class
    records = {r.prompt_idx: r for r in read_round(trainer.args.output_dir, 0)}
    assert trainer._winners
    for idx, examples in trainer._winners.items():
        (ex,) = examples
        rec = records[idx]
        prompt_len = len(tok(rec.prompt)["input_ids"])
        assert all(label == -100 for label in ex["labels"][:prompt_len])
        trained = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100]
        assert trained[-1] == tok.eos_token_id
        assert tok.decode(trained[:-1]) == rec.winner
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)]
    assert changed


def test_reward_kwargs_arrive(tiny, make_args):
    seen = {}

    def spy(prompts, completions, completion_ids, topic, trainer_state, **kwargs):
        seen.update(prompts=prompts, topic=topic, ids=completion_ids, state=trainer_state, completions=completions)
        return [0.0] * len(completions)

    data = prompt_dataset("train").select(range(4))
    trainer = make_trainer(tiny, make_args, dataset=data, reward_funcs=[spy], max_steps=1)
    trainer.train()
    by_prompt = dict(zip(data["prompt"], data["topic"]))
    assert len(seen["prompts"]) == 12 and all(by_prompt[p] == t for p, t in zip(seen["prompts"], seen["topic"]))
    tok = trainer.processing_class
    assert all(tok.decode(i, skip_special_tokens=True) == c for i, c in zip(seen["ids"], seen["completions"]))
    assert seen["state"] is trainer.state


def test_none_scores_are_excluded(tiny, make_args):
    def only_first(completions, **kwargs):
        return [None if i % 3 else 1.0 for i in range(len(completions))]

    trainer = make_trainer(tiny, make_args, reward_funcs=[only_first], max_steps=1)
    trainer.train()
    for rec in read_round(trainer.args.output_dir, 0):
        assert rec.winners == [0]
        assert rec.candidates[1].combined is None


def test_top_n_and_min_score(tiny, make_args):
    trainer = make_trainer(tiny, make_args, top_n=2, max_steps=1)
    trainer.train()
    for rec in read_round(trainer.args.output_dir, 0):
        ranked = sorted(range(3), key=lambda i: (-rec.candidates[i].combined, i))
        assert rec.winners == ranked[:2]
    assert sorted(len(v) for v in trainer._winners.values()) == [2] * len(trainer._winners)

    # min_score between the best and second-best score of some prompts drops exactly the winners below it
    first = read_round(trainer.args.output_dir, 0)
    threshold = float(np.median([sorted(c.combined for c in r.candidates)[-2] for r in first])) + 1e-9
    strict = make_trainer(tiny, make_args, top_n=2, max_steps=1, min_score=threshold,
                          output_dir=trainer.args.output_dir + "-min")
    strict.train()
    for rec in read_round(strict.args.output_dir, 0):
        ranked = sorted(range(3), key=lambda i: (-rec.candidates[i].combined, i))
        assert rec.winners == [i for i in ranked[:2] if rec.candidates[i].combined >= threshold]
    kept = [len(r.winners) for r in read_round(strict.args.output_dir, 0)]
    assert any(k < 2 for k in kept)  # the threshold really cut some winners


def test_round_with_every_prompt_dropped_makes_no_update(tiny, make_args, caplog):
    trainer = make_trainer(tiny, make_args, min_score=1e9, max_steps=2)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    with caplog.at_level(logging.WARNING):
        out = trainer.train()
    assert out.global_step == 2 and np.isfinite(out.training_loss)
    assert all(torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    assert trainer.round_stats[0]["ai/dropped_fraction"] == 1.0
    assert "every prompt was dropped" in caplog.text


def test_drop_in_with_plain_sft_config(tiny, tmp_path):
    model, tok = tiny
    args = SFTConfig(output_dir=str(tmp_path / "sft"), bf16=False, max_steps=1, report_to=[],
                     per_device_train_batch_size=2, learning_rate=1e-3)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=prompt_dataset("train").select(range(4)),
                                       processing_class=tok, reward_funcs="length")
    assert isinstance(trainer.args, ActiveInheritanceConfig)
    assert trainer.args.learning_rate == 1e-3 and trainer.args.num_candidates == 8  # the default
    assert trainer.train().global_step == 1


@pytest.mark.parametrize("fmt", ["standard", "conversational", "messages", "prompt_only"])
def test_dataset_formats(tiny, make_args, fmt):
    rows = prompt_dataset("train").select(range(4)).to_list()
    if fmt == "standard":
        data = [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
    elif fmt == "conversational":
        data = [{"prompt": [{"role": "user", "content": r["prompt"]}],
                 "completion": [{"role": "assistant", "content": r["completion"]}]} for r in rows]
    elif fmt == "messages":
        data = [{"messages": [{"role": "user", "content": r["prompt"]},
                              {"role": "assistant", "content": r["completion"]}]} for r in rows]
    else:
        data = [{"prompt": r["prompt"]} for r in rows]
    received = []

    def spy(completions, **kwargs):
        received.extend(completions)
        return [float(len(str(c))) for c in completions]

    trainer = make_trainer(tiny, make_args, dataset=Dataset.from_list(data), reward_funcs=[spy], max_steps=1,
                           include_reference=fmt != "prompt_only")
    trainer.train()
    conversational = fmt in ("conversational", "messages")
    assert all(isinstance(c, list) == conversational for c in received)
    if conversational:
        assert received[0][0]["role"] == "assistant"
    records = read_round(trainer.args.output_dir, 0)
    sources = {c.source for r in records for c in r.candidates}
    assert sources == ({"policy"} if fmt == "prompt_only" else {"policy", "reference"})
    if fmt == "messages":
        assert records[0].prompt[-1]["role"] == "user"


def test_reference_only_source_trains_on_the_data(tiny, make_args):
    trainer = make_trainer(tiny, make_args, include_reference=True, teacher_mode="replace", max_steps=1)
    trainer.train()
    data = prompt_dataset("train").select(range(8))
    for rec in read_round(trainer.args.output_dir, 0):
        assert [c.source for c in rec.candidates] == ["reference"]
        assert rec.winner == data[rec.prompt_idx]["completion"]


def test_teacher_and_precomputed_sources(tiny, make_args, tmp_path):
    from ail_trainer.testing import build_tiny_model

    teacher_path = str(build_tiny_model(tmp_path / "teacher", arch="gpt2", seed=1))
    data = prompt_dataset("train").select(range(4)).map(lambda r: {"offline": ["an offline answer", "another"]})
    trainer = make_trainer(tiny, make_args, dataset=data, candidates_column="offline", max_steps=1,
                           teacher_num_candidates=2, teachers=[teacher_path])
    trainer.train()
    for rec in read_round(trainer.args.output_dir, 0):
        sources = [c.source for c in rec.candidates]
        assert sources.count("policy") == 3 and sources.count(f"teacher:{teacher_path}") == 2
        assert sources.count("precomputed") == 2
    replace = make_trainer(tiny, make_args, dataset=data, max_steps=1, teacher_mode="replace",
                           teachers=[teacher_path], output_dir=str(tmp_path / "replace"))
    replace.train()
    assert {c.source for r in read_round(replace.args.output_dir, 0) for c in r.candidates} == {
        f"teacher:{teacher_path}"}


def test_same_seed_same_winners(tiny_path, make_args, tmp_path):
    from ail_trainer.testing import load

    winners = []
    for run in range(2):
        trainer = make_trainer(load(tiny_path), make_args, max_steps=1, output_dir=str(tmp_path / f"run{run}"))
        trainer.train()
        winners.append([(r.prompt_idx, r.winner) for r in read_round(trainer.args.output_dir, 0)])
    assert winners[0] == winners[1]


def test_generation_steps_refresh_in_chunks(tiny, make_args):
    trainer = make_trainer(tiny, make_args, generation_steps=1, per_device_train_batch_size=2)
    trainer.train()
    assert [s["ai/round"] for s in trainer.round_stats] == [0, 1, 2, 3]
    sizes = [len(read_round(trainer.args.output_dir, r)) for r in range(4)]
    assert sizes == [2, 2, 2, 2]
    seen = [r.prompt_idx for k in range(4) for r in read_round(trainer.args.output_dir, k)]
    assert sorted(seen) == list(range(8))


def test_long_prompts_are_truncated_with_a_warning(tiny, make_args, caplog):
    trainer = make_trainer(tiny, make_args, max_prompt_length=3, max_steps=1)
    with caplog.at_level(logging.WARNING):
        trainer.train()
    assert "exceed max_prompt_length=3" in caplog.text


def test_resume_continues_without_regenerating(tiny_path, make_args, tmp_path):
    from ail_trainer.testing import load

    kw = dict(output_dir=str(tmp_path / "resume"), per_device_train_batch_size=2, generation_steps=2,
              save_strategy="steps", save_steps=1, max_steps=3)
    first = make_trainer(load(tiny_path), make_args, **kw)
    first.train()
    saved = read_round(kw["output_dir"], 0)
    mtime = round_path(kw["output_dir"], 0).stat().st_mtime_ns

    second = make_trainer(load(tiny_path), make_args, **{**kw, "max_steps": 4})
    calls = []
    original = second._run_round_on_all_processes
    second._run_round_on_all_processes = lambda *a: calls.append(a[0]) or original(*a)
    out = second.train(resume_from_checkpoint=str(tmp_path / "resume" / "checkpoint-3"))
    assert out.global_step == 4
    assert calls == []  # step 4 is in round 1, generated before the checkpoint, and loaded from its records
    assert round_path(kw["output_dir"], 0).stat().st_mtime_ns == mtime
    assert read_round(kw["output_dir"], 0) == saved
    assert second.round_stats[0]["ai/round"] == 1


def test_resume_reuses_every_round_the_interrupted_run_finished(tiny_path, make_args, tmp_path):
    """Rounds written after the checkpoint (the run died later) are reused on resume, never regenerated or rewritten."""
    from ail_trainer.testing import load

    kw = dict(output_dir=str(tmp_path / "resume"), per_device_train_batch_size=2, generation_steps=1,
              save_strategy="steps", save_steps=1, max_steps=4)
    make_trainer(load(tiny_path), make_args, **kw).train()
    saved = {r: round_path(kw["output_dir"], r).read_bytes() for r in range(4)}
    mtimes = {r: round_path(kw["output_dir"], r).stat().st_mtime_ns for r in range(4)}

    second = make_trainer(load(tiny_path), make_args, **kw)
    calls = []
    original = second._run_round_on_all_processes
    second._run_round_on_all_processes = lambda *a: calls.append(a[0]) or original(*a)
    second.train(resume_from_checkpoint=str(tmp_path / "resume" / "checkpoint-1"))
    assert second.state.global_step == 4 and calls == []
    assert [s["ai/round"] for s in second.round_stats] == [1, 2, 3]
    assert {r: round_path(kw["output_dir"], r).read_bytes() for r in range(4)} == saved
    assert {r: round_path(kw["output_dir"], r).stat().st_mtime_ns for r in range(4)} == mtimes


def test_an_all_dropped_update_leaves_parameters_optimizer_and_schedule_untouched(tiny, make_args):
    """Step 2's round drops every prompt (min_score): no parameter, optimizer state or LR schedule moves for it,
    and step 3 trains with the learning rate step 2 would have used."""
    import copy

    from transformers import TrainerCallback

    def drop_round_one(completions, trainer_state, **kwargs):
        return [-1.0 if trainer_state.global_step == 1 else 1.0] * len(completions)

    snaps = {}

    class Snapshot(TrainerCallback):
        def snap(self, key):
            t = trainer
            opt_state = copy.deepcopy(t.optimizer.state_dict()["state"])
            snaps[key] = ({n: p.detach().clone() for n, p in t.model.named_parameters()}, opt_state,
                          t.lr_scheduler.last_epoch, [g["lr"] for g in t.optimizer.param_groups])

        def on_step_begin(self, args, state, control, **kwargs):
            self.snap(("begin", state.global_step))

        def on_step_end(self, args, state, control, **kwargs):
            self.snap(("end", state.global_step))

    trainer = make_trainer(tiny, make_args, reward_funcs=[drop_round_one], min_score=0.0, generation_steps=1,
                           per_device_train_batch_size=2, max_steps=3, lr_scheduler_type="linear",
                           dataset=prompt_dataset("train").select(range(6)))
    trainer.add_callback(Snapshot())
    trainer.train()
    assert trainer.round_stats[1]["ai/dropped_fraction"] == 1.0
    before, after = snaps[("begin", 1)], snaps[("end", 2)]
    assert all(torch.equal(before[0][n], after[0][n]) for n in before[0])
    assert before[1].keys() == after[1].keys() and all(
        torch.equal(before[1][k][s], after[1][k][s]) for k in before[1] for s in before[1][k])
    assert before[2] == after[2] == 1 and before[3] == after[3]  # the scheduler did not step
    assert snaps[("begin", 2)][3] == snaps[("begin", 1)][3]  # step 3 uses step 2's learning rate
    assert trainer.lr_scheduler.last_epoch == 2  # two real updates
    changed = snaps[("end", 3)][0]
    assert any(not torch.equal(changed[n], after[0][n]) for n in changed)  # step 3 did train


@pytest.mark.parametrize("mode", ["no_eos", "keep", "drop"])
def test_truncated_winners(tiny, make_args, mode):
    """Winners cut at max_completion_length: trained without the appended EOS (default), with it, or never chosen."""
    trainer = make_trainer(tiny, make_args, max_completion_length=4, max_steps=1, truncated_winners=mode,
                           reward_funcs=[count_e, "length"], reward_weights=[0.0, 1.0])  # longest wins
    trainer.train()
    tok = trainer.processing_class
    records = {r.prompt_idx: r for r in read_round(trainer.args.output_dir, 0)}
    truncated = [r.winning()[0].finished is False for r in records.values() if r.winners]
    stats = trainer.round_stats[0]
    assert stats["ai/truncated_winners_fraction"] == pytest.approx(np.mean(truncated) if truncated else 0.0)
    if mode == "drop":
        assert not any(truncated)
        for rec in records.values():  # dropped only when no candidate finished
            assert bool(rec.winners) == any(c.finished for c in rec.candidates)
        return
    assert any(truncated)  # the setting really produces cut-off winners
    for idx, (ex,) in trainer._winners.items():
        winner = records[idx].winning()[0]
        trained = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100]
        if winner.finished or mode == "keep":
            assert trained[-1] == tok.eos_token_id
        else:
            assert tok.eos_token_id not in trained
            assert tok.decode(trained, skip_special_tokens=True).strip() == winner.text.strip()


def test_rounds_keep_activation_checkpointing_settings_and_log_quietly(tiny, make_args, capsys):
    import warnings

    from ail_trainer.compat import CHECKPOINTING_ARG as name  # the installed transformers' name for it

    ckpt = {"use_reentrant": False, "every_n_layers": 2}
    trainer = make_trainer(tiny, make_args, generation_steps=1, max_steps=3, **{name: True, f"{name}_kwargs": ckpt})
    model = trainer.accelerator.unwrap_model(trainer.model)
    calls = []
    enable = getattr(model, f"{name}_enable")
    setattr(model, f"{name}_enable", lambda **kw: calls.append(kw) or enable(**kw))
    capsys.readouterr()  # SFTTrainer's own preparation at init shows its bars once
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert len(trainer.round_stats) == 3
    assert getattr(model, f"is_{name}")
    # re-enabled after every round's generation with the run's own settings, not TRL's defaults
    expected = {f"{name}_kwargs": {"use_reentrant": False}, "every_n_layers": 2, "offload": False}
    assert len(calls) >= 3 and all(c == expected for c in calls), calls
    assert not [str(w.message) for w in caught if "checkpointing" in str(w.message)]
    assert "Tokenizing" not in capsys.readouterr().err  # no datasets progress bar per round's winners


def test_diverged_policy_fails_with_a_clear_error(tiny, make_args):
    import copy

    model, tok = tiny
    model = copy.deepcopy(model)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "embed" in n).fill_(float("nan"))
    trainer = make_trainer((model, tok), make_args, max_steps=1)
    with pytest.raises(RuntimeError, match=r"Round 0: 'policy' cannot sample: .* inf or NaN.*Lower `learning_rate`"):
        trainer.train()


def test_fsdp1_generation_gathers_the_root_units_parameters(tiny, make_args, monkeypatch):
    """Under FSDP version 1 the root unit's parameters (embeddings, final norm, LM head) stay sharded unless
    summoned, as GRPOTrainer does with `summon_full_params(recurse=False)`; FSDP2 needs nothing."""
    from contextlib import contextmanager

    from torch.distributed.fsdp import FullyShardedDataParallel

    import ail_trainer.distributed as distributed
    from ail_trainer.sources import policy_for_generation

    trainer = make_trainer(tiny, make_args, max_steps=1)
    summoned = []

    @contextmanager
    def summon(module, **kwargs):
        summoned.append((module, kwargs))
        yield

    monkeypatch.setattr(FullyShardedDataParallel, "summon_full_params", summon)
    for version, expected in [(2, []), (1, [(trainer.model_wrapped, {"recurse": False, "writeback": False})])]:
        monkeypatch.setattr(distributed, "fsdp_version", lambda acc, v=version: v)
        summoned.clear()
        with policy_for_generation(trainer):
            pass
        assert summoned == expected


def test_a_second_train_call_continues_on_the_same_trainer(tiny, make_args):
    """`train()` twice on one trainer (as a notebook does): the skippable optimizer and schedule are rebuilt."""
    trainer = make_trainer(tiny, make_args, max_steps=2)
    trainer.train()
    first = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert trainer.state.global_step == 2 and len(trainer.round_stats) >= 1
    assert any(not torch.equal(first[k], v) for k, v in trainer.model.state_dict().items())


def test_precomputed_candidates_carry_whether_they_ended(tiny, make_args):
    """A pool sampled earlier keeps its cut-off flags, so `truncated_winners` treats them as sampled candidates."""
    long_cut = {"text": "a much longer answer that was cut at the cap", "finished": False}
    data = prompt_dataset("train").select(range(4)).map(lambda r: {"pool": [long_cut, {"text": "short"}]})
    trainer = make_trainer(tiny, make_args, dataset=data, candidates_column="pool", teacher_mode="replace",
                           reward_funcs=["length"], truncated_winners="drop", max_steps=1)
    trainer.train()
    for rec in read_round(trainer.args.output_dir, 0):
        assert [c.finished for c in rec.candidates] == [False, True]
        assert [rec.candidates[w].text for w in rec.winners] == ["short"]  # the longer one was cut: it cannot win


def test_beta_holds_the_policy_near_its_start(tiny, make_args):
    """The KL penalty (`beta`): zero at the first step (policy = reference), logged as `kl`, and a strong one keeps
    the trained policy's tokens closer to the initial policy than plain SFT on the same winners."""
    from ail_trainer.kl import kl_penalty

    lp = torch.tensor([[-1.0, -2.0, -3.0]])
    mask = torch.tensor([[True, True, False]])
    penalty, mean = kl_penalty(lp, lp.clone(), mask, 2)
    assert penalty.item() == 0.0 and mean == 0.0
    penalty, _ = kl_penalty(lp, lp + torch.tensor([[0.5, 0.0, 9.0]]), mask, 2)  # the masked token does not count
    assert penalty.item() == pytest.approx((math.exp(0.5) - 0.5 - 1) / 2)

    drift = {}
    for beta in (0.0, 50.0):
        model, tok = tiny
        trainer = make_trainer((copy.deepcopy(model), tok), make_args, beta=beta, max_steps=4, learning_rate=3e-3,
                               output_dir=str(Path(make_args().output_dir) / f"beta{beta}"))
        start = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        trainer.train()
        drift[beta] = sum((v - start[k]).norm().item() for k, v in trainer.model.state_dict().items())
        logged = [h["kl"] for h in trainer.state.log_history if "kl" in h]
        assert (beta > 0) == bool(logged)
        assert trainer.ref_model is None if beta == 0 else all(not p.requires_grad
                                                               for p in trainer.ref_model.parameters())
    assert drift[50.0] < drift[0.0]


def test_beta_must_not_be_negative():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        ActiveInheritanceConfig("x", beta=-0.1, bf16=False)


def test_beta_with_lora_uses_the_policy_with_its_adapter_off(tiny, make_args):
    """With PEFT the reference is the base weights (the adapter disabled): no copy, and the penalty grows from zero
    as the adapter trains."""
    from peft import LoraConfig

    model, tok = tiny
    args = make_args(beta=1.0, max_steps=4, learning_rate=1e-2)
    trainer = ActiveInheritanceTrainer(copy.deepcopy(model), args, processing_class=tok, reward_funcs=[count_e],
                                       train_dataset=prompt_dataset("train").select(range(8)),
                                       peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert trainer.ref_model is None
    trainer.train()
    kl = [h["kl"] for h in trainer.state.log_history if "kl" in h]
    assert kl[0] == pytest.approx(0.0, abs=1e-6) and max(kl) > 0


def test_bf16_on_a_cpu_samples_trains_and_reports_under_autocast(tiny, make_args, tiny_path, monkeypatch):
    from ail_trainer import config as config_module
    from ail_trainer import report as report_module
    from ail_trainer.report import before_after

    monkeypatch.setattr(config_module, "cpu_computes_bf16", lambda: True)  # as on a CPU with bf16 instructions
    trainer = make_trainer(tiny, make_args, bf16=True, max_steps=1, per_device_train_batch_size=2)
    assert trainer.args.use_cpu and trainer.accelerator.mixed_precision == "bf16"
    model = trainer.accelerator.unwrap_model(trainer.model)
    dtypes = []
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    trainer.train()
    hook.remove()
    # candidates and the training step both ran in bf16, while the weights stay float32
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    trainer.save_model(trainer.args.output_dir)
    held_out = prompt_dataset("test")
    autocast = []
    generate = report_module.generate
    monkeypatch.setattr(report_module, "generate",
                        lambda *a, **k: autocast.append(torch.is_autocast_enabled("cpu")) or generate(*a, **k))
    report = before_after(tiny_path, trainer.args.output_dir, held_out, trainer, 2, 1, coupled=True, autocast=True)
    assert autocast == [True, True]
    assert report["mixed_precision"] == "bf16" and "bf16 autocast" in report["table"]
    # by default the report samples both models in float32, whatever the run trained in
    report = before_after(tiny_path, trainer.args.output_dir, held_out, trainer, 2, 1, coupled=True)
    assert autocast[2:] == [False, False]
    assert report["mixed_precision"] == "no" and "autocast" not in report["table"]



def test_bf16_on_a_cpu_without_bf16_instructions_trains_in_float32(tmp_path, monkeypatch, caplog):
    from ail_trainer import config as config_module

    reads = config_module.cpu_computes_bf16
    monkeypatch.setattr(config_module, "cpu_computes_bf16", lambda: False)
    args = ActiveInheritanceConfig(str(tmp_path), bf16=True, use_cpu=True, report_to=[])
    assert args.bf16 is False
    assert "no bf16 instructions" in caplog.text and "Training in float32" in caplog.text
    x86 = tmp_path / "cpuinfo"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not reads(x86)
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert reads(x86)
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert reads(arm)
    assert reads(tmp_path / "missing")  # unknown: bf16 as asked


def test_train_dataset_is_required_as_sftt_trainer_requires_it(tiny, make_args):
    model, tok = tiny
    with pytest.raises(ValueError, match="`train_dataset` is required"):
        ActiveInheritanceTrainer(model, make_args(), processing_class=tok, reward_funcs=["mtld"])


def test_trust_remote_code_reaches_the_hub_config_check(monkeypatch, make_args):
    """A Hub id is checked with the run's `trust_remote_code`, so a remote-code model is not asked about on stdin."""
    import transformers

    from ail_trainer.checks import check_model_source

    seen = []

    def from_pretrained(name, **kwargs):
        seen.append((name, kwargs.get("trust_remote_code")))
        raise OSError("stop here")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", from_pretrained)
    with pytest.raises(OSError, match="could not be loaded as a Hub id"):
        check_model_source("org/remote-model", trust_remote_code=True)
    with pytest.raises(OSError):
        ActiveInheritanceTrainer("org/remote-model", make_args(trust_remote_code=True),
                                 train_dataset=prompt_dataset("train"), reward_funcs=["mtld"])
    assert seen == [("org/remote-model", True), ("org/remote-model", True)]
