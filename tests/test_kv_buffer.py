"""kv_buffer: in-place key-value caches hold what transformers' concatenating `DynamicLayer` holds, step for step."""

import pytest
import torch
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

from ail_trainer.kv_buffer import BufferedLayer, buffer_cache


def _states(batch: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, length, 4, generator=g), torch.randn(batch, 2, length, 4, generator=g)


def _same(a: DynamicLayer, b: DynamicLayer) -> None:
    assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
    assert a.get_seq_length() == b.get_seq_length() and a.get_mask_sizes(1) == b.get_mask_sizes(1)


def test_buffered_layer_holds_what_dynamic_layer_holds():
    """Prefill, in-place steps past the planned capacity (it grows), row removal, repeats and crops: the same keys
    and values, lengths and mask sizes as the concatenating layer, and each step returns what it holds."""
    plain = DynamicLayer()
    plain.update(*_states(3, 5, 0))
    buffered = BufferedLayer(plain.keys, plain.values, capacity=7)
    _same(plain, buffered)
    for step in range(4):  # the 3rd step passes the capacity of 7
        new = _states(plain.keys.shape[0], 1, step + 1)
        expected, got = plain.update(*new), buffered.update(*new)
        assert all(torch.equal(e, g) for e, g in zip(expected, got))
        _same(plain, buffered)
        if step == 1:
            rows = torch.tensor([0, 2])
            plain.batch_select_indices(rows)
            buffered.batch_select_indices(rows)
            _same(plain, buffered)
    assert buffered._keys.shape[-2] >= 9  # grew once past 7
    for layer in (plain, buffered):
        layer.batch_repeat_interleave(2)
        layer.crop(-2)
    _same(plain, buffered)
    new = _states(4, 1, 9)
    plain.update(*new)
    buffered.update(*new)
    _same(plain, buffered)


def test_steps_write_in_place_and_earlier_views_are_not_copies():
    layer = BufferedLayer(*_states(2, 3, 0), capacity=8)
    storage = layer._keys.untyped_storage().data_ptr()
    for step in range(5):
        keys, _ = layer.update(*_states(2, 1, step + 1))
        assert keys.untyped_storage().data_ptr() == storage  # no new allocation until the capacity is passed


def test_buffer_cache_converts_only_filled_dynamic_layers():
    cache = DynamicCache()
    cache.layers = [DynamicLayer(), DynamicLayer(), DynamicSlidingWindowLayer(sliding_window=4)]
    for i in (0, 2):
        cache.layers[i].update(*_states(2, 6, i))
    assert buffer_cache(cache, 10) == 1
    assert type(cache.layers[0]) is BufferedLayer and cache.layers[0]._keys.shape[-2] == 16
    assert type(cache.layers[1]) is DynamicLayer and type(cache.layers[2]) is DynamicSlidingWindowLayer
    with pytest.raises(NotImplementedError, match="new cache"):
        cache.layers[0].reset()


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_sampling_with_buffered_caches_draws_the_same_tokens(kv_heads, monkeypatch):
    """With the same uniforms, the compacting sampler draws token for token what it draws with transformers' own
    concatenating cache, with grouped-query attention too (SmolLM2's 9 heads share 3 key-value heads)."""
    import transformers

    import ail_trainer.generation as generation
    from ail_trainer.generation import SamplingSettings, build_generation_config, generate, render_prompts
    from ail_trainer.testing import build_tokenizer

    tok = build_tokenizer()
    config = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=kv_heads,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    ids = render_prompts(["Explain the water cycle to a curious child.", "Hi", "Describe tides, please."], tok, False)
    sampling = build_generation_config(SamplingSettings(max_new_tokens=24), model, tok)
    drawn = [t for s in generate(model, tok, ids, 4, sampling, batch_size=3, show_progress=False, noise_seed=1)
             for g in s for t in g.ids]
    sampling.eos_token_id = [max(set(drawn), key=drawn.count)]  # the commonest token ends samples at many steps
    buffered = generate(model, tok, ids, 4, sampling, batch_size=3, show_progress=False, noise_seed=1)
    monkeypatch.setattr(generation, "buffer_cache", lambda cache, new_tokens: 0)
    concatenated = generate(model, tok, ids, 4, sampling, batch_size=3, show_progress=False, noise_seed=1)
    assert [[g.ids for g in s] for s in buffered] == [[g.ids for g in s] for s in concatenated]
    assert len({len(g.ids) for s in buffered for g in s}) >= 3  # samples ended at different steps: rows were removed
