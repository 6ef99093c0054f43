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
