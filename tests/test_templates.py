"""Base models as sources: the paper's prompt template, Jinja templates, stop strings, and winners that train the
policy in its own chat format whatever format their source was prompted with."""

import shutil
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer

import ail_trainer.sources as sources_module
from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.generation import SamplingSettings, build_generation_config, generate
from ail_trainer.records import read_round
from ail_trainer.report import write_card
from ail_trainer.templates import PromptFormat, cut_at_stop_strings

CHAT = [[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "hello there"}],
        [{"role": "user", "content": "the cat sat"}]]


def test_the_papers_template_renders_its_exact_text(tiny):
    _, tok = tiny
    fmt = PromptFormat.resolve("question_answer")
    assert fmt.named and fmt.stop_strings == ("###",)
    ids = fmt.render(CHAT + ["a plain prompt"], tok)
    texts = [tok.decode(i) for i in ids]
    bos = tok.bos_token if tok("x")["input_ids"][0] == tok.bos_token_id else ""
    assert texts[0] == bos + "Answer briefly.\n\n### Question: hello there\n ### Answer: "
    assert texts[1] == bos + "### Question: the cat sat\n ### Answer: "
    assert texts[2] == bos + "### Question: a plain prompt\n ### Answer: "


def test_a_jinja_template_is_applied_as_a_chat_template(tiny):
    _, tok = tiny
    fmt = PromptFormat.resolve("{% for m in messages %}[{{ m['content'] }}]{% endfor %}>>", ["<<"])
    assert not fmt.named and fmt.stop_strings == ("<<",)
    assert tok.decode(fmt.render(CHAT[1:], tok)[0]) == "[the cat sat]>>"


@pytest.mark.parametrize("template, stops, match", [
    ("### Q: {prompt}", None, "neither a named template"),
    ("question_answer", "###", "list of non-empty strings"),
    (None, ["ok", ""], "list of non-empty strings"),
])
def test_bad_templates_and_stop_strings_are_refused_at_config_time(tmp_path, template, stops, match):
    with pytest.raises(ValueError, match=match):
        ActiveInheritanceConfig(str(tmp_path), prompt_template=template, stop_strings=stops, bf16=False)


def test_cut_at_stop_strings():
    assert cut_at_stop_strings("An answer. \n### Question: next", ("###",)) == ("An answer.", True)
    assert cut_at_stop_strings("a STOP b END", ("END", "STOP")) == ("a", True)
    assert cut_at_stop_strings("no stop here", ("###",)) == ("no stop here", False)


@pytest.mark.parametrize("compact", [True, False], ids=["compacting", "generate"])
def test_generation_stops_at_a_stop_string_and_counts_as_finished(tiny, compact):
    model, tok = tiny
    ids = [tok("the cat sat on")["input_ids"]]
    config = build_generation_config(SamplingSettings(24, temperature=1.0, top_p=1.0), model, tok)

    def sample(stop_strings=()):
        torch.manual_seed(0)  # the same draws until the stop string appears
        return generate(model, tok, ids, 1, config, 4, show_progress=False, compact=compact,
                        stop_strings=stop_strings)[0][0]

    full = sample()
    assert not full.finished and len(full.text) > 12, full.text  # ran to the cap
    stop = full.text[len(full.text) // 2:][:3]
    expected = full.text[: full.text.find(stop)].rstrip()
    cut = sample((stop,))
    assert cut.finished and cut.text == expected and len(cut.ids) < len(full.ids)
    assert cut.ids == tok(cut.text, add_special_tokens=False)["input_ids"]


@pytest.fixture
def base_teacher(tiny_path, tmp_path):
    """The tiny model as a base model: the same weights, no chat template."""
    folder = tmp_path / "base-teacher"
    shutil.copytree(tiny_path, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = None
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    tok.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).chat_template is None
    return str(folder)


def test_a_base_teacher_without_a_template_names_prompt_template(tiny, base_teacher, make_args):
    model, tok = tiny
    with pytest.raises(ValueError, match="prompt_template"):
        ActiveInheritanceTrainer(model, make_args(bf16=False), train_dataset=Dataset.from_dict({"prompt": CHAT}),
                                 processing_class=tok, reward_funcs=["length"], teachers=[base_teacher])


def test_a_base_teacher_with_the_papers_template_trains_the_chat_policy(tiny, base_teacher, make_args, monkeypatch):
    model, tok = tiny
    seen: list[str] = []
    original = sources_module.generate

    def recording(m, t, ids, *args, **kwargs):
        seen.extend(t.decode(i) for i in ids)
        return original(m, t, ids, *args, **kwargs)

    monkeypatch.setattr(sources_module, "generate", recording)
    teacher = {"model": base_teacher, "name": "base", "prompt_template": "question_answer", "num_candidates": 2}
    args = make_args(teacher_mode="replace", max_steps=1, per_device_train_batch_size=2, bf16=False)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": CHAT}),
                                       processing_class=tok, reward_funcs=["length"], teachers=[teacher])
    trainer.train()
    # the teacher was prompted in the paper's format ...
    assert len(seen) == 2 and all("### Question: " in s and s.endswith("### Answer: ") for s in seen)
    assert all("<|user|>" not in s for s in seen)
    # ... and its winners train the policy in the policy's chat format
    assert trainer.round_stats[0]["ai/candidates_per_prompt"] == 2
    assert len(trainer._winners) == 2
    for rows in trainer._winners.values():
        text = tok.decode(rows[0]["input_ids"])
        assert "<|user|>" in text and "<|assistant|>" in text and "### Question" not in text
        trained = [t for t, label in zip(rows[0]["input_ids"], rows[0]["labels"]) if label != -100]
        assert trained and "<|user|>" not in tok.decode(trained)


def test_the_policy_can_be_prompted_with_a_template_too(tiny, make_args, monkeypatch):
    model, tok = tiny
    seen: list[str] = []
    original = sources_module.generate

    def recording(m, t, ids, *args, **kwargs):
        seen.extend(t.decode(i) for i in ids)
        assert kwargs["stop_strings"] == ("###",)
        return original(m, t, ids, *args, **kwargs)

    monkeypatch.setattr(sources_module, "generate", recording)
    args = make_args(prompt_template="question_answer", max_steps=1, per_device_train_batch_size=2, bf16=False)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": CHAT}),
                                       processing_class=tok, reward_funcs=["length"])
    trainer.train()
    assert seen and all("### Answer: " in s for s in seen)
    assert all("###" not in c.text for rec in read_round(args.output_dir, 0) for c in rec.candidates)


def test_several_sources_log_their_win_shares_and_the_gain_over_the_policy(tiny, tiny_path, make_args):
    model, tok = tiny
    args = make_args(max_steps=1, per_device_train_batch_size=2, bf16=False, num_candidates=2)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": CHAT}),
                                       processing_class=tok, reward_funcs=["length"],
                                       teachers=[{"model": tiny_path, "name": "other"}])
    trainer.train()
    stats = trainer.round_stats[0]
    shares = {k: v for k, v in stats.items() if k.startswith("ai/wins/")}
    assert set(shares) == {"ai/wins/policy", "ai/wins/teacher:other"}
    assert sum(shares.values()) == pytest.approx(1.0)
    records = read_round(args.output_dir, 0)
    won = [c.source for rec in records for c in rec.winning()]
    assert shares["ai/wins/policy"] == pytest.approx(won.count("policy") / len(won))
    gains = [rec.winning()[0].scores["length"] - max(c.scores["length"] for c in rec.candidates
                                                     if c.source == "policy") for rec in records]
    assert stats["ai/length/gain_over_policy"] == pytest.approx(sum(gains) / len(gains))
    assert stats["ai/length/gain_over_policy"] >= 0  # the pool holds the policy's candidates, so never below them
    write_card(trainer, args.output_dir, "tiny", None)
    card = (Path(args.output_dir) / "README.md").read_text()
    assert "Winners by source" in card and "| `policy` | `teacher:other` |" in card
