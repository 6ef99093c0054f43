"""One decoding step's draw from transformers' top-p / min-p distribution, without sorting the vocabulary.

`TopPLogitsWarper` sorts every row of the vocabulary at every step, and `torch.multinomial` then draws over all of
it: on a CPU, with SmolLM2's 49k tokens and a batch of 128 samples, those two cost more than the model's own output
layer. The nucleus is almost always a few dozen tokens, so here each row's top slice (`torch.topk`) is taken, grown
only for the rows whose nucleus does not fit, filtered with transformers' rules and drawn from. The distribution is
the processors' own (tested against them); the random stream is not, so the draws differ from `generate`'s.
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


def draw(scores: torch.Tensor, top_k: int | None, top_p: float | None,
         min_p: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One sampled token per row of processed logits (`top_k` already masked), `(rows, 1)`, and which rows had no
    finite distribution (inf or NaN logits, or every token masked): those draw a stand-in, for the caller to raise."""
    invalid = invalid_rows(scores)
    scores = torch.where(invalid[:, None], torch.zeros_like(scores), scores)
    if top_p is None and min_p is None and not top_k:
        return torch.multinomial(torch.softmax(scores, dim=-1), 1), invalid
    probs, ids = nucleus(scores, top_p, min_p, first=max(FIRST_SLICE, (top_k or 0) + 1))
    return ids.gather(1, torch.multinomial(probs, 1)), invalid
