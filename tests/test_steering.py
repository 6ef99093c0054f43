"""The mechanism steers: a length reward makes sampled completions clearly longer than plain SFT does."""

import torch
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.generation import generate, render_prompts
from ail_trainer.prompts import load_prompts, prompt_dataset


def sampled_length(model, tok, prompts, seed=0):
    from transformers import GenerationConfig

    torch.manual_seed(seed)
    config = GenerationConfig(do_sample=True, top_p=0.9, temperature=1.0, max_new_tokens=48,
                              eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out = generate(model, tok, render_prompts(prompts, tok, False), 4, config, 16, show_progress=False)
    return sum(len(g.ids) for samples in out for g in samples) / (4 * len(prompts))


def test_length_reward_steers_above_plain_sft(tiny, tmp_path):
    model, tok = tiny
    train = prompt_dataset("train")
    common = dict(report_to=[], save_strategy="no", bf16=False, learning_rate=3e-3, lr_scheduler_type="linear",
                  per_device_train_batch_size=16, disable_tqdm=True, seed=0, logging_steps=50)
    # A warm start that answers briefly, like the short references.
    SFTTrainer(model, SFTConfig(str(tmp_path / "warm"), num_train_epochs=4, **common), train_dataset=train,
               processing_class=tok).train()
    held_out = [r["prompt"] for r in load_prompts("test")]
    warm = sampled_length(model, tok, held_out)
    # Fresh copies from disk: SFTTrainer patches `forward` with a closure over the model it was given.
    model.save_pretrained(tmp_path / "warm-model")

    sft_model = AutoModelForCausalLM.from_pretrained(tmp_path / "warm-model")
    SFTTrainer(sft_model, SFTConfig(str(tmp_path / "sft"), num_train_epochs=3, **common), train_dataset=train,
               processing_class=tok).train()
    ai_model = AutoModelForCausalLM.from_pretrained(tmp_path / "warm-model")
    args = ActiveInheritanceConfig(str(tmp_path / "ai"), num_train_epochs=3, num_candidates=4,
                                   max_completion_length=48, generation_batch_size=32, **common)
    trainer = ActiveInheritanceTrainer(ai_model, args, train_dataset=train, processing_class=tok,
                                       reward_funcs=["length"])
    trainer.train()

    sft, ai = sampled_length(sft_model, tok, held_out), sampled_length(ai_model, tok, held_out)
    print(f"mean sampled length on held-out prompts: warm {warm:.1f}, SFT {sft:.1f}, active inheritance {ai:.1f}")
    assert ai > 1.5 * sft and ai > warm
    gains = [s["ai/length/selection_gain"] for s in trainer.round_stats]
    assert len(gains) == 3 and all(g > 0 for g in gains)
