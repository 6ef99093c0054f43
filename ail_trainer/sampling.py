"""One decoding step's draw from transformers' top-p / min-p distribution, without sorting the vocabulary.

`TopPLogitsWarper` sorts every row of the vocabulary at every step, and `torch.multinomial` then draws over all of
it: on a CPU, with SmolLM2's 49k tokens and a batch of 128 samples, those two cost more than the model's own output
layer. The nucleus is almost always a few dozen tokens, so here each row's top slice (`torch.topk`) is taken, grown
only for the rows whose nucleus does not fit, filtered with transformers' rules and drawn from. The distribution is
the processors' own (tested against them); the random stream is not, so the draws differ from `generate`'s.

Given one uniform per row (`draw(..., uniforms=)`), a row's token is drawn by inverse CDF instead: the same uniform
picks the same token from two distributions wherever they agree closely (common random numbers), so two models
sampled with the same uniforms give answers that differ only where the models do.
"""

from __future__ import annotations

import torch

FIRST_SLICE = 64
GROWTH = 8


def nucleus(scores: torch.Tensor, top_p: float | None, min_p: float | None,
            first: int = FIRST_SLICE) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's filtered distribution over its top slice: `(probs, token_ids)`, both `(rows, K)`, probs zero past
    the kept tokens. Keeps what `TopPLogitsWarper(top_p)` then `MinPLogitsWarper(min_p)` keep on `scores` (processed
    logits, `-inf` where masked): a token stays while the mass ranked above it is below `top_p`, and while its
    probability is at least `min_p` times the top one's; the top token always stays."""
    rows, vocab = scores.shape
    log_total = torch.logsumexp(scores, dim=-1, keepdim=True)
    width = min(first, vocab)
    pending = torch.arange(rows, device=scores.device)
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (rows, probs, ids) per slice width
    while pending.numel():
        values, ids = torch.topk(scores[pending], width, dim=-1)
        probs = torch.exp(values - log_total[pending])
        keep = torch.ones_like(probs, dtype=torch.bool)
        if top_p is not None:
            keep &= (probs.cumsum(-1) - probs) < top_p
        if min_p is not None:
            keep &= probs >= min_p * probs[:, :1]
        keep[:, 0] = True
        if width == vocab:
            done = torch.ones_like(keep[:, 0])
        else:
            # The slice holds the whole kept set once one of its tokens is dropped (every later token is dropped
            # too: it has more mass above it and a lower probability), or once the rest of the row is masked.
            done = (~keep).any(-1) | torch.isneginf(values[:, -1])
        parts.append((pending[done], torch.where(keep, probs, 0.0)[done], ids[done]))
        pending = pending[~done]
        width = min(width * GROWTH, vocab)
    widest = max(p.shape[1] for _, p, _ in parts)
    probs = scores.new_zeros((rows, widest))
    ids = torch.zeros((rows, widest), dtype=torch.long, device=scores.device)
    for index, p, i in parts:
        probs[index, : p.shape[1]] = p
        ids[index, : i.shape[1]] = i
    return probs, ids


def invalid_rows(scores: torch.Tensor) -> torch.Tensor:
    """Rows of processed logits with no finite distribution: inf or NaN logits, or every token masked."""
    return ~torch.isfinite(torch.logsumexp(scores, dim=-1)) | torch.isnan(scores).any(-1)


def inverse_cdf(probs: torch.Tensor, ids: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Each row's token at quantile `uniforms` of its `probs` (unnormalized, zero where dropped), in column order."""
    cdf = probs.cumsum(-1)
    column = torch.searchsorted(cdf, uniforms[:, None].to(cdf.dtype) * cdf[:, -1:], right=True)
    return ids.gather(1, column.clamp_(max=probs.shape[1] - 1))


def full_inverse_cdf(scores: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw from the whole softmax, ordered as the row's top slice by probability and then the rest of the
    vocabulary by id: only rows whose uniform falls past the top slice's mass pay for a cumulative sum over the
    vocabulary."""
    log_total = torch.logsumexp(scores, dim=-1, keepdim=True)
    values, ids = torch.topk(scores, min(FIRST_SLICE, scores.shape[1]), dim=-1)
    head = torch.exp(values - log_total)
    mass = head.sum(-1)
    tokens = inverse_cdf(head, ids, (uniforms / mass).clamp(max=1.0))
    tail = (uniforms >= mass).nonzero()[:, 0]
    if tail.numel():
        rest = torch.exp(scores[tail] - log_total[tail]).scatter(1, ids[tail], 0.0)
        keep = rest.sum(-1) > 0  # a rounding-only tail keeps the top slice's last token
        tail, rest = tail[keep], rest[keep]
        rest_u = ((uniforms[tail] - mass[tail]) / (1 - mass[tail]).clamp(min=1e-12)).clamp(0.0, 1.0)
        vocab = torch.arange(scores.shape[1], device=scores.device).expand(len(tail), -1)
        tokens[tail] = inverse_cdf(rest, vocab, rest_u)
    return tokens


def draw(scores: torch.Tensor, top_k: int | None, top_p: float | None, min_p: float | None,
         uniforms: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One sampled token per row of processed logits (`top_k` already masked), `(rows, 1)`, and which rows had no
    finite distribution (inf or NaN logits, or every token masked): those draw a stand-in, for the caller to raise.

    With `uniforms` (one in [0, 1) per row), each row's token is the inverse CDF of its uniform. Without them, an
    unfiltered row still draws by inverse CDF, from uniforms of torch's global generator."""
    invalid = invalid_rows(scores)
    scores = torch.where(invalid[:, None], torch.zeros_like(scores), scores)
    if top_p is None and min_p is None and not top_k:
        if uniforms is None:
            # Exact for any uniform, and faster than `multinomial` over the whole softmax (bench_main_sampling.py).
            uniforms = torch.rand(scores.shape[0], device=scores.device)
        return full_inverse_cdf(scores, uniforms), invalid
    probs, ids = nucleus(scores, top_p, min_p, first=max(FIRST_SLICE, (top_k or 0) + 1))
    if uniforms is not None:
        return inverse_cdf(probs, ids, uniforms), invalid
    return ids.gather(1, torch.multinomial(probs, 1)), invalid
