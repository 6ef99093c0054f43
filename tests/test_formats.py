"""Every SFT dataset format with a text to continue: language-modeling text, formatting_func, pre-tokenized rows,
streamed datasets; and packed / padding-free winner batches."""

import pytest
import torch
from datasets import Dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from ail_trainer import ActiveInheritanceTrainer
from ail_trainer.data import load_prompt_data, split_text
from ail_trainer.prompts import prompt_dataset
from ail_trainer.records import read_round
from ail_trainer.winners import winner_batch

TEXTS = ["The sky was grey.  Rain came later, and the streets filled with water.",
         "Cats sleep a lot! They wake at night and hunt.",
         "No sentence end here just words going on and on",
         "Short one."]


def count_e(completions, **kwargs):
    return [float(str(c).count("e")) for c in completions]


@pytest.mark.parametrize("mode, size, prompt", [
    ("sentence", None, "The sky was grey."),
    ("words", 3, "The sky was"),
    ("fraction", 0.25, "The sky was"),
])
def test_split_text_keeps_the_text(mode, size, prompt):
    head, tail = split_text(TEXTS[0], mode, size)
    assert head == prompt and head + tail == TEXTS[0]


def test_split_text_edge_cases():
    assert split_text(TEXTS[2]) == ("No sentence end here just", " words going on and on")  # no end: half the words
    assert split_text("Short one.") == ("Short", " one.")  # one sentence: still leaves a word to continue
    assert split_text("Word") == ("Word", "")


def test_language_modeling_text_trains_on_continuations(tiny, make_args):
    model, tok = tiny
    trainer = ActiveInheritanceTrainer(model, make_args(max_steps=1), processing_class=tok,
                                       train_dataset=Dataset.from_dict({"text": TEXTS}), reward_funcs=[count_e])
    assert trainer.prompt_data.prompts == [split_text(t)[0] for t in TEXTS]
    assert trainer.prompt_data.references == [split_text(t)[1] for t in TEXTS]
    trainer.train()
    assert sorted(r.prompt for r in read_round(trainer.args.output_dir, 0)) == sorted(trainer.prompt_data.prompts)


def test_dataset_text_field_and_text_prompt_split(tiny, make_args):
    model, tok = tiny
    data = Dataset.from_dict({"body": TEXTS, "label": [0, 1, 0, 1]})
    trainer = ActiveInheritanceTrainer(model, make_args(dataset_text_field="body", text_prompt_split="words",
                                                        text_prompt_size=2), processing_class=tok,
                                       train_dataset=data, reward_funcs=[count_e])
    assert trainer.prompt_data.prompts == ["The sky", "Cats sleep", "No sentence", "Short"]
    assert trainer.prompt_data.columns["label"] == [0, 1, 0, 1]  # other columns still reach the rewards


def test_formatting_func_is_applied_before_the_prompt_is_taken(tiny, make_args):
    model, tok = tiny
    data = Dataset.from_dict({"question": ["Why is the sky blue?", "What is rain?"],
                              "answer": ["Light scatters. Blue scatters most.", "Water falling. It is wet."]})
    trainer = ActiveInheritanceTrainer(model, make_args(max_steps=1), processing_class=tok, train_dataset=data,
                                       formatting_func=lambda row: f"Q: {row['question']} A: {row['answer']}",
                                       reward_funcs=[count_e])
    assert trainer.prompt_data.prompts == ["Q: Why is the sky blue?", "Q: What is rain?"]
    assert trainer.prompt_data.references == [" A: Light scatters. Blue scatters most.",
                                              " A: Water falling. It is wet."]
    trainer.train()
    with pytest.raises(ValueError, match="one string per row"):
        load_prompt_data(data, formatting_func=lambda row: [row["question"]])


def test_pretokenized_rows_split_at_the_first_assistant_token(tiny, make_args):
    model, tok = tiny
    pairs = [("Tell me a story. ", "Once there was a cat."), ("Say hi. ", "Hi there.")]
    rows = []
    for prompt, answer in pairs:
        p, a = tok(prompt)["input_ids"], tok(answer, add_special_tokens=False)["input_ids"]
        rows.append({"input_ids": p + a, "assistant_masks": [0] * len(p) + [1] * len(a)})
    trainer = ActiveInheritanceTrainer(model, make_args(max_steps=1), processing_class=tok,
                                       train_dataset=Dataset.from_list(rows), reward_funcs=[count_e])
    assert trainer.prompt_data.prompts == [tok.decode(tok(p)["input_ids"]) for p, _ in pairs]
    assert [r.strip() for r in trainer.prompt_data.references] == [a for _, a in pairs]
    trainer.train()
    bad = Dataset.from_list([{"input_ids": [1, 2, 3], "assistant_masks": [1, 1, 1]}])
    with pytest.raises(ValueError, match="starts at token 0"):
        load_prompt_data(bad, tokenizer=tok)


def test_iterable_dataset_streams_through_rounds(tiny, make_args):
    model, tok = tiny
    rows = prompt_dataset("train").select(range(6))
    stream = rows.to_iterable_dataset()
    args = make_args(max_steps=4, per_device_train_batch_size=2, generation_steps=1)
    trainer = ActiveInheritanceTrainer(model, args, processing_class=tok, train_dataset=stream,
                                       reward_funcs=[count_e])
    assert len(trainer.prompt_data) == 2  # only what set-up needs is read before training
    trainer.train()
    assert trainer.state.global_step == 4
    # prompt i is the stream's i-th row, the stream restarting when it runs out: 8 prompts from 6 rows
    assert trainer.prompt_data.prompts == [rows[i % 6]["prompt"] for i in range(8)]
    for round_id in range(4):
        records = read_round(args.output_dir, round_id)
        assert [r.prompt_idx for r in records] == [2 * round_id, 2 * round_id + 1]
        assert [r.prompt for r in records] == [rows[i % 6]["prompt"] for i in (2 * round_id, 2 * round_id + 1)]


def loss_of(model, batch):
    batch = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in batch.items()}
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    labels = batch["labels"]
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="sum",
                                             ignore_index=-100), int((labels[:, 1:] != -100).sum())


@pytest.mark.parametrize("flag", ["packing", "padding_free"])
def test_packed_winner_batch_has_the_unpacked_loss(tiny, make_args, flag):
    model, tok = tiny
    kwargs = {"packing": True} if flag == "packing" else {"padding_free": True, "max_length": None}
    args = make_args(max_steps=1, top_n=2, per_device_train_batch_size=4, **kwargs)
    trainer = ActiveInheritanceTrainer(model, args, processing_class=tok, reward_funcs=[count_e],
                                       train_dataset=prompt_dataset("train").select(range(4)))
    trainer.train()
    prompt_idx = sorted(trainer._winners)
    examples = [ex for i in prompt_idx for ex in trainer._winners[i]]
    assert len(examples) == 8  # top_n=2 winners for each of the 4 prompts
    packed = winner_batch(trainer, trainer._winners, prompt_idx)
    assert packed["input_ids"].shape[0] == 1 and "position_ids" in packed and "attention_mask" not in packed
    unpacked = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)(examples)
    # the completion-only mask holds: the same tokens are trained, in the same order
    trained = lambda b: b["input_ids"][b["labels"] != -100].tolist()
    assert trained(packed) == trained(unpacked) and len(trained(packed)) > 0
    model = trainer.model.eval()
    (packed_sum, n_packed), (unpacked_sum, n_unpacked) = loss_of(model, packed), loss_of(model, unpacked)
    assert n_packed == n_unpacked
    assert packed_sum.item() / n_packed == pytest.approx(unpacked_sum.item() / n_unpacked, rel=1e-4)


def test_per_row_chat_template_kwargs_reach_generation_and_winners(tiny, make_args, tmp_path, monkeypatch):
    """A `chat_template_kwargs` column is applied per row, as SFTTrainer applies it: to the prompt each source
    generates from and to the winner rows the SFT step trains on."""
    import copy

    import ail_trainer.sources as sources

    model, tok = tiny
    tok = copy.deepcopy(tok)
    tok.chat_template = ("{% for m in messages %}{{ (m['role'] | upper if shout else m['role']) + ': ' + m['content'] "
                         "+ '\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT: ' if shout else "
                         "'assistant: ' }}{% endif %}")
    rows = prompt_dataset("train").select(range(4)).to_list()
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                               "chat_template_kwargs": {"shout": i % 2 == 1}} for i, r in enumerate(rows)])
    rendered = []
    real = sources.render_prompts

    def spy(prompts, *args, **kwargs):
        out = real(prompts, *args, **kwargs)
        rendered.extend(zip([tok.decode(ids) for ids in out], prompts))
        return out

    monkeypatch.setattr(sources, "render_prompts", spy)
    args = make_args(max_steps=1)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=data, processing_class=tok, reward_funcs=[count_e])
    trainer.train()
    assert len(rendered) == 4
    for text, prompt in rendered:
        shout = any(prompt == [{"role": "user", "content": r["prompt"]}] for i, r in enumerate(rows) if i % 2)
        assert text.startswith("USER: ") == shout and text.endswith("ASSISTANT: " if shout else "assistant: ")
    for idx, (winner,) in trainer._winners.items():
        # compared as text: a sampled completion's first token may merge with the prompt's last one
        expected = tok.apply_chat_template(data[idx]["prompt"], add_generation_prompt=True, tokenize=False,
                                           shout=idx % 2 == 1)
        assert tok.decode(winner["input_ids"]).startswith(expected)
