"""Winner examples: the round's winners tokenized exactly as SFTTrainer tokenizes (prompt, completion) rows, and the
micro-batches the SFT step trains on."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from datasets import Dataset

from . import compat
from .data import as_completion


def tokenize_winners(trainer: Any, rows: list[dict], round_id: int) -> dict[int, list[dict]]:
    """Prompt index -> its tokenized winners (`input_ids`, `labels` with prompt tokens masked), via SFTTrainer's
    own preparation (chat template, EOS, completion mask). Every process runs it, since preparation synchronizes."""
    placeholder = not rows
    if placeholder:
        data = trainer.prompt_data
        rows = [{"prompt": data.prompts[0], "completion": as_completion("", data.conversational), "_ai_prompt_idx": -1,
                 "_ai_text": "", "_ai_truncated": False}]
    prepared = compat.prepare_sft_dataset(trainer, Dataset.from_list(rows), f"round {round_id} winners")
    winners: dict[int, list[dict]] = defaultdict(list)
    if not placeholder:
        no_eos = trainer.args.truncated_winners == "no_eos"
        tokenizer = trainer.tokenizer_for_text
        for ex in prepared.select_columns(["input_ids", "labels", "_ai_prompt_idx", "_ai_text", "_ai_truncated"]):
            labels = ex["labels"]
            if no_eos and ex["_ai_truncated"]:
                labels = mask_end_of_turn(labels, ex["_ai_text"], tokenizer)
            winners[ex["_ai_prompt_idx"]].append({"input_ids": ex["input_ids"], "labels": labels})
    return winners


def mask_end_of_turn(labels: list[int], text: str, tokenizer: Any) -> list[int]:
    """Mask what SFT preparation appended after a cut-off completion's `text` (EOS, or the chat template's
    end-of-turn tokens), so training does not teach the model to stop mid-sentence."""
    trained = [i for i, label in enumerate(labels) if label != -100]
    if not trained:
        return labels
    tokens = [labels[i] for i in trained]
    target = text.strip()
    end = len(tokens)
    # the shortest prefix of the trained tokens that still decodes to the completion's text
    while end > 0 and tokenizer.decode(tokens[: end - 1], skip_special_tokens=True).strip() == target:
        end -= 1
    if tokenizer.decode(tokens[:end], skip_special_tokens=True).strip() != target:
        end = len(tokens) - (tokens[-1] == tokenizer.eos_token_id)  # could not align: drop a final EOS only
    out = list(labels)
    for i in trained[end:]:
        out[i] = -100
    return out


def winner_batch(trainer: Any, winners: dict[int, list[dict]], prompt_idx: list[int]) -> dict[str, torch.Tensor]:
    """The collated winners of a micro-batch's prompts; a fully masked one-token placeholder when all were dropped."""
    examples = [ex for i in prompt_idx for ex in winners.get(i, [])]
    if not examples:
        pad = getattr(trainer.tokenizer_for_text, "pad_token_id", None) or 0
        examples = [{"input_ids": [pad], "labels": [-100]}]
    return trainer.data_collator(examples)
