import pytest
import torch
from transformers import GenerationConfig

from ail_trainer.generation import generate, render_prompts


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_shared_prefill_matches_repeated_prompts(arch, tmp_path):
    from ail_trainer.testing import build_tiny_model, load

    model, tok = load(build_tiny_model(tmp_path / arch, arch=arch))
    prompts = ["Explain the water cycle to a curious child.", "Hi", "Describe tides in a few sentences, please."]
    ids = render_prompts(prompts, tok, False)
    greedy = GenerationConfig(do_sample=False, max_new_tokens=10, pad_token_id=tok.pad_token_id, eos_token_id=None)
    # greedy: every sample of a prompt equals the prompt's own greedy continuation
    shared = generate(model, tok, ids, 3, greedy, batch_size=2, show_progress=False, share_prefill=True)
    for prompt_ids, samples in zip(ids, shared):
        alone = model.generate(input_ids=torch.tensor([prompt_ids]), generation_config=greedy)[0, len(prompt_ids):]
        assert all(s.ids == alone.tolist() for s in samples)
    sampling = GenerationConfig(do_sample=True, top_p=0.9, max_new_tokens=10, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    a = generate(model, tok, ids, 4, sampling, batch_size=3, show_progress=False, share_prefill=True)
    torch.manual_seed(0)
    b = generate(model, tok, ids, 4, sampling, batch_size=3, show_progress=False, share_prefill=False)
    assert [[g.ids for g in s] for s in a] == [[g.ids for g in s] for s in b]


def test_moe_trained_with_router_logits_samples(tmp_path):
    """SFTTrainer turns on `output_router_logits` for MoE models (their auxiliary loss); sampling works with it on,
    and leaves it on for training."""
    from transformers import AutoModelForCausalLM, Qwen3MoeConfig

    from ail_trainer.testing import build_tokenizer

    tok = build_tokenizer()
    config = Qwen3MoeConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, moe_intermediate_size=16,
                            num_experts=4, num_experts_per_tok=2, num_hidden_layers=2, num_attention_heads=2,
                            num_key_value_heads=2, head_dim=8, pad_token_id=tok.pad_token_id,
                            eos_token_id=tok.eos_token_id, output_router_logits=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    ids = render_prompts(["Explain tides.", "Hi"], tok, False)
    sampling = GenerationConfig(do_sample=True, max_new_tokens=6, pad_token_id=tok.pad_token_id)
    for share in (True, False):
        out = generate(model, tok, ids, 3, sampling, batch_size=2, show_progress=False, share_prefill=share)
        assert [len(s) for s in out] == [3, 3]
    assert model.config.output_router_logits is True


def test_prefix_tuning_generates_without_shared_prefill(tmp_path):
    """PEFT prompt learning keeps its virtual tokens in the cache, so its prompts are prefilled by `generate`."""
    from peft import PrefixTuningConfig, get_peft_model

    from ail_trainer.generation import is_prompt_learning
    from ail_trainer.testing import build_tiny_model, load

    model, tok = load(build_tiny_model(tmp_path / "llama"))
    model = get_peft_model(model, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    assert is_prompt_learning(model)
    ids = render_prompts(["Explain the water cycle.", "Hi"], tok, False)
    sampling = GenerationConfig(do_sample=True, max_new_tokens=6, pad_token_id=tok.pad_token_id)
    out = generate(model, tok, ids, 3, sampling, batch_size=2, show_progress=False, share_prefill=True)
    assert [len(s) for s in out] == [3, 3]
