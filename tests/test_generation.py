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
    # `generate` draws in both (the compacting sampler's draws are checked by distribution, below)
    a = generate(model, tok, ids, 4, sampling, batch_size=3, show_progress=False, share_prefill=True, compact=False)
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


def _ids(out):
    return [[(g.ids, g.finished) for g in samples] for samples in out]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("sampling", [dict(top_p=0.9), dict(top_p=0.9, temperature=0.7, repetition_penalty=1.3),
                                      dict(top_k=5, min_p=0.05)])
def test_compacting_samples_what_generate_samples(arch, sampling, tmp_path):
    """The compacting sampler's first token follows the distribution `generate`'s processors give (4000 draws per
    prompt, a chi-square test of fit), and its answers run to the cap. `top_p` alone also checks that `top_k: 0`
    disables top-k (`generate` would otherwise apply its default of 50, which a 512-token vocabulary shows)."""
    from scipy.stats import chisquare
    from transformers.generation import (
        LogitsProcessorList,
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    from ail_trainer.generation import SamplingSettings, build_generation_config, resolved_sampling
    from ail_trainer.testing import build_tiny_model, load

    model, tok = load(build_tiny_model(tmp_path / arch, arch=arch))
    model.generation_config.eos_token_id = None
    ids = render_prompts(["Explain the water cycle to a curious child.", "Hi there"], tok, False)
    min_p = sampling.pop("min_p", None)
    config = build_generation_config(SamplingSettings(max_new_tokens=1, **sampling), model, tok)
    config.eos_token_id, config.min_p = None, min_p
    assert config.top_k == sampling.get("top_k", 0)
    assert resolved_sampling(config, model) is not None
    torch.manual_seed(0)
    draws = generate(model, tok, ids, 4000, config, batch_size=2, show_progress=False)
    processors = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(config.repetition_penalty)]
                                     if config.repetition_penalty not in (None, 1.0) else [])
    if config.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(config.temperature))
    if config.top_k:
        processors.append(TopKLogitsWarper(config.top_k))
    if config.top_p not in (None, 1.0):
        processors.append(TopPLogitsWarper(config.top_p))
    if min_p:
        processors.append(MinPLogitsWarper(min_p))
    for prompt_ids, samples in zip(ids, draws):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt_ids])).logits[:, -1, :]
        expected = torch.softmax(processors(torch.tensor([prompt_ids]), logits), -1)[0]
        first = [g.ids[0] if g.ids else tok.eos_token_id for g in samples]  # an EOS draw leaves an empty answer
        seen = torch.bincount(torch.tensor(first), minlength=len(expected)).double()
        assert set(seen.nonzero()[:, 0].tolist()) <= set(expected.nonzero()[:, 0].tolist())
        if not config.top_k:
            assert int((seen > 0).sum()) > 50
        # tokens expected fewer than 5 times are pooled, as the test asks
        support = expected > 0
        counts, probs = seen[support], expected.double()[support] * len(samples)
        small = probs < 5
        if small.any():
            counts = torch.cat([counts[~small], counts[small].sum()[None]])
            probs = torch.cat([probs[~small], probs[small].sum()[None]])
        assert chisquare(counts.numpy(), probs.numpy() * counts.sum().item() / probs.sum().item()).pvalue > 1e-3
    config.max_new_tokens = 12
    answers = generate(model, tok, ids, 4, config, batch_size=2, show_progress=False)
    assert all(len(g.ids) == 12 or g.finished for samples in answers for g in samples)  # to the cap, or to an EOS
    assert sum(len(g.ids) == 12 for samples in answers for g in samples) >= 4


def test_compacting_drops_finished_samples_and_matches_generate(tmp_path):
    """Greedy answers of the built-in chat model end at different steps (some at the first): each is removed from
    the batch and the cache when it ends, and every answer still equals `generate`'s."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ail_trainer.builtin import builtin_model_path
    from ail_trainer.generation import SamplingSettings, build_generation_config

    path = builtin_model_path("builtin:tiny-chat")
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    prompts = [[{"role": "user", "content": q}] for q in
               ["Explain the water cycle.", "Hi", "Describe tides in a few sentences, please.", "Why is the sky blue?",
                "Name a fruit."]]
    ids = render_prompts(prompts, tok, True)
    config = build_generation_config(SamplingSettings(max_new_tokens=40, do_sample=False), model, tok)
    compacted = generate(model, tok, ids, 1, config, batch_size=5, show_progress=False)
    generated = generate(model, tok, ids, 1, config, batch_size=5, show_progress=False, compact=False)
    assert _ids(compacted) == _ids(generated)
    lengths = {len(g.ids) for samples in compacted for g in samples}
    assert len(lengths) >= 2 and any(g.finished for samples in compacted for g in samples)
    config = build_generation_config(SamplingSettings(max_new_tokens=40, top_p=0.9), model, tok)
    torch.manual_seed(0)
    sampled = generate(model, tok, ids, 8, config, batch_size=5, show_progress=False)
    stop = set(tok.convert_tokens_to_ids([tok.eos_token]))
    for samples in sampled:
        assert len(samples) == 8
        for g in samples:  # a sample ends at its first stop token, or runs to the cap
            assert not stop & set(g.ids) and (g.finished or len(g.ids) == 40)


def test_configs_the_compacting_sampler_does_not_implement_go_to_generate(tmp_path):
    from transformers import GenerationConfig

    from ail_trainer.generation import resolved_sampling
    from ail_trainer.testing import build_tiny_model, load

    model, tok = load(build_tiny_model(tmp_path / "llama"))
    plain = GenerationConfig(do_sample=True, max_new_tokens=6, pad_token_id=tok.pad_token_id)
    assert resolved_sampling(plain, model)["top_k"] is None  # unset: generate's default (50) applies, here too
    assert resolved_sampling(GenerationConfig(do_sample=True, max_new_tokens=6, no_repeat_ngram_size=2), model) is None
    model.generation_config.suppress_tokens = [5]  # the model's own config counts, as generate merges it
    assert resolved_sampling(plain, model) is None
    out = generate(model, tok, render_prompts(["Explain tides.", "Hi"], tok, False), 3, plain, batch_size=2,
                   show_progress=False)
    assert [len(s) for s in out] == [3, 3] and all(5 not in g.ids for s in out for g in s)


MOE = {"moe_intermediate_size": 16, "num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4,
       "num_experts_per_tok": 2, "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1, "head_dim": 8}


@pytest.mark.parametrize("config_cls", ["Qwen3Config", "MistralConfig", "GPTNeoXConfig", "Phi3Config", "Qwen3MoeConfig",
                                        "Cohere2Config", "Glm4MoeConfig", "GptOssConfig", "Gemma2Config"])
def test_compacting_matches_generate_across_architectures(config_cls):
    """Caches with sliding-window layers (window 4, shorter than the prompts), MoE routers and soft-capped logits:
    greedy answers that end at different steps (the stop token is the first token one prompt answers with) equal
    `generate`'s."""
    import transformers

    from ail_trainer.generation import SamplingSettings, build_generation_config, resolved_sampling
    from ail_trainer.testing import build_tokenizer

    tok = build_tokenizer()
    cls = getattr(transformers, config_cls)
    fields = cls().to_dict()
    extra = {k: v for k, v in {**MOE, "sliding_window": 4}.items() if k in fields}
    config = cls(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
                 eos_token_id=tok.eos_token_id, **extra)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    ids = render_prompts(["Explain the water cycle to a curious child.", "Hi there", "Describe tides, please.",
                          "Why do leaves change colour in autumn?"], tok, False)
    config = build_generation_config(SamplingSettings(max_new_tokens=12, do_sample=False), model, tok)
    assert resolved_sampling(config, model) is not None
    first = generate(model, tok, ids, 1, config, batch_size=4, show_progress=False, compact=False)
    config.eos_token_id = [first[0][0].ids[0]]  # prompt 0 ends at once; the others when they reach that token
    compacted = generate(model, tok, ids, 1, config, batch_size=4, show_progress=False)
    generated = generate(model, tok, ids, 1, config, batch_size=4, show_progress=False, compact=False)
    assert _ids(compacted) == _ids(generated)
    assert compacted[0][0].ids == [] and compacted[0][0].finished


def test_common_random_numbers_do_not_depend_on_batching(tmp_path):
    """With `noise_seed`, each (prompt, sample) has its own random stream: the answers are the same for any batch
    size (batches group prompts by length, so the order in which they are sampled changes), a second copy of the model
    answers identically, another seed answers otherwise, and a config only `generate` can sample is refused rather
    than silently sampled without common numbers."""
    from ail_trainer.generation import SamplingSettings, build_generation_config
    from ail_trainer.testing import build_tiny_model, load

    path = build_tiny_model(tmp_path / "llama")
    model, tok = load(path)
    ids = render_prompts(["Explain tides.", "Hi", "Describe the water cycle in a few sentences.", "Why?"], tok, False)
    config = build_generation_config(SamplingSettings(max_new_tokens=12), model, tok)
    one = generate(model, tok, ids, 3, config, batch_size=1, show_progress=False, noise_seed=5)
    four = generate(model, tok, ids, 3, config, batch_size=4, show_progress=False, noise_seed=5)
    assert _ids(one) == _ids(four)
    again = generate(load(path)[0], tok, ids, 3, config, batch_size=3, show_progress=False, noise_seed=5)
    assert _ids(again) == _ids(one)
    assert _ids(generate(model, tok, ids, 3, config, batch_size=4, show_progress=False, noise_seed=6)) != _ids(one)
    beams = GenerationConfig(do_sample=True, max_new_tokens=6, pad_token_id=tok.pad_token_id, no_repeat_ngram_size=2)
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        generate(model, tok, ids, 2, beams, batch_size=2, show_progress=False, noise_seed=5)
