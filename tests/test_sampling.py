import pytest
import torch
from transformers.generation import (
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ail_trainer.sampling import FIRST_SLICE, draw, nucleus


def _warped(scores, temperature=None, top_k=None, top_p=None, min_p=None):
    """transformers' warpers, in `generate`'s order, then the softmax it draws from."""
    processors = LogitsProcessorList()
    if temperature:
        processors.append(TemperatureLogitsWarper(temperature))
    if top_k:
        processors.append(TopKLogitsWarper(top_k))
    if top_p:
        processors.append(TopPLogitsWarper(top_p))
    if min_p:
        processors.append(MinPLogitsWarper(min_p))
    return torch.softmax(processors(None, scores.clone()), dim=-1)


def _rows(vocab, seed=0):
    """Peaked rows, flat rows (a nucleus wider than the first slices) and rows in between."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn((24, vocab), generator=g)
    scale = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5, 0.05] * 4)[:, None]
    return base * scale


@pytest.mark.parametrize("vocab", [512, 49152])
@pytest.mark.parametrize("settings", [dict(top_p=0.9), dict(top_p=0.9, temperature=0.7), dict(top_k=5, min_p=0.05),
                                      dict(top_k=50, top_p=0.95), dict(min_p=0.1), dict(top_p=0.5, min_p=0.2),
                                      dict(top_k=50)])
def test_nucleus_is_the_distribution_transformers_warpers_give(vocab, settings):
    """Same kept tokens and the same probabilities as transformers' warpers, for rows whose nucleus fits the first
    slice and for flat rows whose nucleus needs the slice grown (to the whole vocabulary for the flattest)."""
    scores = _rows(vocab)
    expected = _warped(scores, **settings)
    processed = scores.clone()
    if settings.get("temperature"):
        processed = processed / settings["temperature"]
    if settings.get("top_k"):
        processed = TopKLogitsWarper(settings["top_k"])(None, processed)
    probs, ids = nucleus(processed, settings.get("top_p"), settings.get("min_p"),
                         first=max(FIRST_SLICE, settings.get("top_k", 0) + 1))
    dense = torch.zeros_like(expected).scatter_add_(1, ids, probs)
    dense = dense / dense.sum(-1, keepdim=True)
    assert torch.equal(dense > 0, expected > 0)
    torch.testing.assert_close(dense, expected, atol=1e-6, rtol=1e-4)
    if vocab > 512 and "top_p" in settings and not settings.get("top_k"):
        assert probs.shape[1] > FIRST_SLICE  # the flat rows needed a wider slice
        assert (expected > 0).sum(-1).max() > FIRST_SLICE


def test_draw_samples_the_nucleus_and_flags_rows_without_a_distribution():
    torch.manual_seed(0)
    scores = torch.tensor([[4.0, 3.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0], [float("nan"), 0.0, 0.0, 0.0],
                           [float("-inf")] * 4, [float("inf"), 0.0, 0.0, 0.0]])
    tokens, invalid = draw(scores.repeat(2000, 1), top_k=0, top_p=0.8, min_p=None)
    assert invalid.view(2000, 5).tolist() == [[False, False, True, True, True]] * 2000
    first = tokens.view(2000, 5)[:, 0]
    assert set(first.tolist()) == {0, 1}  # 0.718 + 0.264 of the mass: the top two tokens make the nucleus
    assert abs((first == 0).float().mean().item() - 0.731) < 0.03  # 0.718 / (0.718 + 0.264)
    assert set(tokens.view(2000, 5)[:, 1].tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("vocab", [512, 49152])
@pytest.mark.parametrize("settings", [dict(), dict(top_p=0.9), dict(top_k=5, min_p=0.05), dict(top_k=50)])
def test_inverse_cdf_draws_follow_the_distribution(vocab, settings):
    """Evenly spaced uniforms are evenly spaced quantiles: each token is drawn in proportion to its probability (to
    one draw in N), for the whole softmax (ordered as the top slice, then the rest by id; flat rows put most of their
    mass past the top slice) and for filtered distributions."""
    scores = _rows(vocab)[[0, 2, 5]]
    expected = _warped(scores, **settings)
    processed = TopKLogitsWarper(settings["top_k"])(None, scores.clone()) if settings.get("top_k") else scores
    n = 1000
    uniforms = (torch.arange(n) + 0.5) / n
    counts = torch.zeros_like(expected)
    for row in range(len(scores)):
        tokens, invalid = draw(processed[row].expand(n, -1), settings.get("top_k"), settings.get("top_p"),
                               settings.get("min_p"), uniforms=uniforms)
        assert not invalid.any()
        counts[row] = torch.bincount(tokens[:, 0], minlength=vocab).float() / n
    assert not counts[expected == 0].any()  # nothing outside the distribution
    assert (counts - expected).abs().max() <= 1.5 / n


def test_common_uniforms_draw_the_same_token_from_close_distributions():
    """The same uniforms pick the same token wherever two distributions agree closely; independent draws do not.
    Rows as a language model's: a few likely tokens over a long flat tail."""
    g = torch.Generator().manual_seed(1)
    scores = torch.randn((500, 49152), generator=g)
    scores[:, :10] += 12 + 1.5 * torch.randn((500, 10), generator=g)
    close = scores + 0.05 * torch.randn(scores.shape, generator=g)
    uniforms = torch.rand(500, generator=g)
    for top_p in (None, 0.9):
        a, _ = draw(scores, 0, top_p, None, uniforms=uniforms)
        b, _ = draw(close, 0, top_p, None, uniforms=uniforms)
        assert torch.equal(draw(scores, 0, top_p, None, uniforms=uniforms)[0], a)
        torch.manual_seed(0)
        c, _ = draw(close, 0, top_p, None)
        assert (a == b).float().mean() > 0.9 > 0.5 > (a == c).float().mean()


def test_unfiltered_draws_without_uniforms_follow_the_softmax_and_the_global_seed():
    """No top-k / top-p / min-p and no uniforms: the inverse CDF of torch's own uniforms, so `manual_seed` repeats
    the draws and the frequencies are the softmax's, including the mass past the top slice."""
    scores = _rows(512)[[1, 5]]  # a peaked row and a flat one
    expected = torch.softmax(scores, dim=-1)
    n = 20000
    for row in range(2):
        torch.manual_seed(3)
        tokens, invalid = draw(scores[row].expand(n, -1), None, None, None)
        torch.manual_seed(3)
        assert torch.equal(draw(scores[row].expand(n, -1), None, None, None)[0], tokens)
        assert not invalid.any()
        freq = torch.bincount(tokens[:, 0], minlength=512).float() / n
        assert (freq - expected[row]).abs().max() < 0.01
        top = expected[row].topk(FIRST_SLICE).indices
        past = 1 - expected[row][top].sum()
        assert abs((1 - freq[top].sum()) - past) < 0.015
