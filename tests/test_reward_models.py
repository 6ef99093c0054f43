"""Sequence-classification reward models as scorers, taken as GRPOTrainer takes them."""

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

from ail_trainer import ActiveInheritanceTrainer
from ail_trainer.builtin import builtin_model_path
from ail_trainer.prompts import prompt_dataset
from ail_trainer.records import read_round
from ail_trainer.rewards import resolve_reward
from ail_trainer.rewards.model import RewardModel


@pytest.fixture(scope="module")
def reward_model_path(tmp_path_factory, tiny_path):
    """A tiny randomly initialized Llama sequence classifier (num_labels=1), saved with a tokenizer that has no
    pad token (the scorer must fall back to EOS)."""
    tok = AutoTokenizer.from_pretrained(tiny_path)
    tok.pad_token = None
    torch.manual_seed(3)
    config = LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         intermediate_size=64, vocab_size=len(tok), num_labels=1, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id)
    model = LlamaForSequenceClassification(config)
    path = tmp_path_factory.mktemp("rm") / "tiny-rm"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def reference_scores(path, texts):
    """The reward model's own `logits[:, 0]`, one text at a time (no padding involved)."""
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
    tok = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        return [model(**tok(t, return_tensors="pt", add_special_tokens=False)).logits[0, 0].item() for t in texts]


def test_string_resolves_registry_first_then_model(reward_model_path):
    assert type(resolve_reward("length")).__name__ == "Length"
    rm = resolve_reward(reward_model_path)
    assert isinstance(rm, RewardModel) and rm.__name__ == "tiny-rm"
    assert rm.tokenizer.pad_token == rm.tokenizer.eos_token  # no pad token: EOS
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_reward("/nonexistent/reward-model")


def test_batched_scores_equal_unpadded_logits(reward_model_path):
    rm = RewardModel(reward_model_path, batch_size=3)
    prompts = ["Say hi. ", "Tell me about cats. ", "Why? ", "Go on. "]
    completions = ["hi", "cats are small and soft animals", "because", "and then the end came slowly"]
    got = rm(prompts=prompts, completions=completions)
    want = reference_scores(reward_model_path, [p + c for p, c in zip(prompts, completions)])
    assert got == pytest.approx(want, abs=1e-4)


def test_conversational_prompts_use_the_chat_template(reward_model_path):
    chat_tok = AutoTokenizer.from_pretrained(builtin_model_path("builtin:tiny-chat"))
    rm = RewardModel(reward_model_path, tokenizer=chat_tok)
    prompt = [{"role": "user", "content": "Name a fruit."}]
    completion = [{"role": "assistant", "content": "An apple."}]
    (text,) = rm.texts([prompt], [completion])
    assert text == chat_tok.apply_chat_template(prompt + completion, tokenize=False)
    plain = RewardModel(reward_model_path)
    plain.tokenizer.chat_template = None
    with pytest.raises(ValueError, match="has no chat template"):
        plain.texts([prompt], [completion])


def test_trained_completions_are_the_reward_models_argmax(tiny, make_args, reward_model_path):
    model, tok = tiny
    args = make_args(num_candidates=4, max_steps=2, per_device_train_batch_size=4)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=prompt_dataset("train").select(range(8)),
                                       processing_class=tok, reward_funcs=[reward_model_path])
    trainer.train()
    records = read_round(args.output_dir, 0)
    assert len(records) == 8
    for rec in records:
        texts = [rec.prompt + c.text for c in rec.candidates]
        want = reference_scores(reward_model_path, texts)
        assert [c.scores["tiny-rm"] for c in rec.candidates] == pytest.approx(want, abs=1e-4)
        assert rec.winners == [max(range(len(want)), key=want.__getitem__)]
    # the winners are what the SFT step trained on
    for idx, (ex,) in trainer._winners.items():
        rec = next(r for r in records if r.prompt_idx == idx)
        completion = [t for t, label in zip(ex["input_ids"], ex["labels"]) if label != -100]
        assert tok.decode(completion, skip_special_tokens=True).strip() == rec.winner.strip()


def test_loaded_model_with_reward_processing_classes(tiny, make_args, reward_model_path):
    model, tok = tiny
    loaded = AutoModelForSequenceClassification.from_pretrained(reward_model_path, num_labels=1)
    rm_tok = AutoTokenizer.from_pretrained(reward_model_path)
    trainer = ActiveInheritanceTrainer(model, make_args(max_steps=1), processing_class=tok,
                                       train_dataset=Dataset.from_dict({"prompt": ["Say something. "] * 4}),
                                       reward_funcs=["length", loaded], reward_processing_classes=[None, rm_tok])
    assert trainer.reward_names == ["length", "tiny-rm"]
    assert trainer.reward_funcs[1].tokenizer is rm_tok
    trainer.train()
    with pytest.raises(ValueError, match="one per reward"):
        ActiveInheritanceTrainer(model, make_args(), processing_class=tok, train_dataset=prompt_dataset("train"),
                                 reward_funcs=["length", loaded], reward_processing_classes=[rm_tok])
    with pytest.raises(ValueError, match="not a reward model"):
        ActiveInheritanceTrainer(model, make_args(), processing_class=tok, train_dataset=prompt_dataset("train"),
                                 reward_funcs=["length"], reward_processing_classes=[rm_tok])


# ---------------------------------------------------------------- the likelihood reward (fluency)
def reference_loglik(path, prompt_ids, completion):
    """Mean log-probability of the completion's tokens from transformers' own masked loss (labels -100 on the
    prompt), one sequence at a time."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    if isinstance(completion, str):
        completion = tok(completion, add_special_tokens=False)["input_ids"]
    ids = list(prompt_ids) + list(completion)
    labels = [-100] * len(prompt_ids) + ids[len(prompt_ids):]
    with torch.no_grad():
        return -model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()


def test_likelihood_is_transformers_masked_loss_batched_and_padded(tiny_path):
    from ail_trainer.rewards.likelihood import Likelihood

    reward = resolve_reward({"name": "likelihood", "model": tiny_path, "batch_size": 3})
    assert isinstance(reward, Likelihood) and reward.__name__ == "likelihood"
    prompts = ["Say hi. ", "Tell me about cats. ", "Why? ", "Go on. "]
    completions = ["hi", "cats are small and soft animals", "because", "and then the end came slowly"]
    got = reward(prompts=prompts, completions=completions)
    tok = AutoTokenizer.from_pretrained(tiny_path)
    want = [reference_loglik(tiny_path, tok(p)["input_ids"], c) for p, c in zip(prompts, completions)]
    assert got == pytest.approx(want, abs=1e-4)
    assert reward(prompts=["Say hi. "], completions=[""]) == [None]  # nothing to score: it cannot win
    from ail_trainer.rewards import resolve_rewards

    (with_tok,) = resolve_rewards([{"name": "likelihood", "model": tiny_path}], processing_classes=[tok])
    assert isinstance(with_tok, Likelihood) and with_tok.tokenizer is tok


def test_likelihood_max_length_keeps_the_completion_start_then_the_prompt_end(tiny_path):
    from ail_trainer.rewards.likelihood import Likelihood

    reward = Likelihood(tiny_path, max_length=8)
    tok = reward.tokenizer
    prompt = "Tell me about cats, dogs and birds, and why people keep them. "
    long, short = "cats are small and soft animals that like to sleep all day", "hi"
    prompt_ids = tok(prompt)["input_ids"]
    long_ids, short_ids = (tok(c, add_special_tokens=False)["input_ids"] for c in (long, short))
    assert len(prompt_ids) > 8 and len(long_ids) > 8 and len(short_ids) < 7
    got_long, got_short = reward(prompts=[prompt, prompt], completions=[long, short])
    # a long completion keeps its first 7 tokens after the prompt's last one; a short one keeps all of its tokens
    # after as much of the prompt's end as fits
    assert got_long == pytest.approx(reference_loglik(tiny_path, prompt_ids[-1:], long_ids[:7]), abs=1e-4)
    want_short = reference_loglik(tiny_path, prompt_ids[-(8 - len(short_ids)):], short_ids)
    assert got_short == pytest.approx(want_short, abs=1e-4)
    assert got_long != pytest.approx(Likelihood(tiny_path)(prompts=[prompt], completions=[long])[0], abs=1e-4)


def test_likelihood_reads_conversational_prompts_as_the_policy_samples_them():
    from ail_trainer.rewards.likelihood import Likelihood

    path = builtin_model_path("builtin:tiny-chat")
    reward = Likelihood(path)
    tok = reward.tokenizer
    prompt = [{"role": "user", "content": "Name a fruit."}]
    (got,) = reward(prompts=[prompt], completions=[[{"role": "assistant", "content": "An apple."}]])
    prompt_ids = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    assert got == pytest.approx(reference_loglik(path, prompt_ids["input_ids"], "An apple."), abs=1e-4)


def test_likelihood_needs_a_model_and_is_placed_by_the_trainer(tiny, make_args, tiny_path):
    from ail_trainer.rewards.likelihood import Likelihood

    with pytest.raises(ValueError, match="needs `model`"):
        resolve_reward("likelihood")
    model, tok = tiny
    args = make_args(num_candidates=4, max_steps=1, per_device_train_batch_size=4, reward_weights=[0.0, 1.0])
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=prompt_dataset("train").select(range(4)),
                                       processing_class=tok,
                                       reward_funcs=["mtld", {"name": "likelihood", "model": tiny_path}])
    assert trainer.reward_names == ["mtld", "likelihood"]
    assert isinstance(trainer.reward_funcs[1], Likelihood) and trainer.reward_funcs[1].device is not None
    trainer.train()
    for rec in read_round(args.output_dir, 0):
        scores = [c.scores["likelihood"] for c in rec.candidates]
        scores = [float("-inf") if s is None else s for s in scores]  # an empty candidate is unscored
        assert all(s < 0 for s in scores) and rec.winners == [scores.index(max(scores))]
