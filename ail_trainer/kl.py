"""A KL penalty toward the initial policy on the winners' tokens (`beta`, as GRPOTrainer names it).

Training on the model's own best samples also sharpens it: each step raises the probability of tokens it already
favours. The penalty holds the policy near where it started, token by token, on the tokens it trains on:
`loss = CE + beta * KL`, with the per-token estimator GRPO uses (k3: `exp(r - p) - (r - p) - 1`, where p and r are
the policy's and the reference's log-probabilities of the trained token), normalized as the CE loss is.

The reference is a frozen copy of the policy taken when the trainer is built (with PEFT: the policy with its adapter
disabled, no copy). It is scored through the same fused LM head SFTTrainer adds, so no full logits are materialized.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Any

import torch


def is_peft(model: Any) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def reference_model(model: Any) -> Any | None:
    """A frozen copy of `model` for the penalty; None for a PEFT model (its adapter is disabled instead)."""
    if is_peft(model):
        return None
    ref = copy.deepcopy(model)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def reference_log_probs(ref: Any | None, policy: Any, inputs: dict) -> torch.Tensor:
    """Per-token log-probabilities of the trained tokens under the reference (no gradient)."""
    inputs = {k: v for k, v in inputs.items() if k not in ("use_cache", "output_router_logits")}
    with torch.no_grad():
        if ref is None:  # PEFT: the same weights with the adapter off
            with policy.disable_adapter() if is_peft(policy) else nullcontext():
                return policy(**inputs, fused_lm_head=True).log_probs
        return ref(**inputs, fused_lm_head=True).log_probs


def kl_penalty(policy_log_probs: torch.Tensor, ref_log_probs: torch.Tensor, mask: torch.Tensor,
               num_tokens: torch.Tensor | int) -> tuple[torch.Tensor, float]:
    """GRPO's k3 estimator summed over the trained tokens and divided by the CE loss's token count; and its mean per
    trained token of this batch (for the log)."""
    delta = (ref_log_probs - policy_log_probs).masked_fill(~mask, 0.0)
    per_token = (torch.exp(delta) - delta - 1).masked_fill(~mask, 0.0)
    total = per_token.sum()
    mean = float(total.detach() / mask.sum().clamp(min=1))
    return total / torch.as_tensor(num_tokens, device=total.device).clamp(min=1), mean
