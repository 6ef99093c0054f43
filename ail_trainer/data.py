"""Normalize every prompt-bearing SFT dataset format into prompts, references and reward columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Dataset, IterableDataset
from trl.data_utils import is_conversational, maybe_convert_to_chatml

RESERVED = ("prompt", "completion", "messages", "conversations")


@dataclass
class PromptData:
    """The training prompts, in their original format (a string or a list of messages)."""

    prompts: list[Any]
    references: list[Any] | None
    precomputed: list[list[str]] | None
    columns: dict[str, list[Any]]  # every other column, passed to rewards as keyword arguments
    conversational: bool

    def __len__(self) -> int:
        return len(self.prompts)

    def to_dataset(self) -> Dataset:
        data = {"prompt": self.prompts, **self.columns}
        if self.references is not None:
            data["completion"] = self.references
        return Dataset.from_dict(data)


def _column(dataset: Dataset, name: str) -> list:
    """A whole column as a list, read in one batch (iterating a column formats row by row: ~70x slower)."""
    return dataset.select_columns([name]).to_dict()[name]


def _split_messages(messages: list[dict], row: int) -> tuple[list[dict], list[dict]]:
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        raise ValueError(
            f"Row {row} of the 'messages' column has no assistant turn; the prompt is taken as the turns before "
            "the last assistant turn. Add one, or give a 'prompt' column."
        )
    return messages[:last], [messages[last]]


def load_prompt_data(dataset: Any, candidates_column: str | None = None, include_reference: bool = False) -> PromptData:
    """Extract prompts from `prompt`/`completion`, prompt-only, `messages` or ShareGPT `conversations` data."""
    if isinstance(dataset, IterableDataset):
        raise TypeError(
            "ActiveInheritanceTrainer needs a map-style `datasets.Dataset` (it schedules rounds over all prompts); "
            "got an IterableDataset. Materialize it first, e.g. `Dataset.from_list(list(ds.take(n)))`."
        )
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"`train_dataset` must be a `datasets.Dataset`, got {type(dataset).__name__}. Wrap rows with "
            "`datasets.Dataset.from_list(rows)` or load them with `datasets.load_dataset`."
        )
    if len(dataset) == 0:
        raise ValueError("`train_dataset` is empty (0 rows); pass a dataset with at least one prompt.")
    names = dataset.column_names
    if "conversations" in names and "messages" not in names:
        dataset = dataset.map(maybe_convert_to_chatml, remove_columns=["conversations"])
        names = dataset.column_names

    if "prompt" in names:
        prompts = _column(dataset, "prompt")
        references = _column(dataset, "completion") if "completion" in names else None
    elif "messages" in names:
        split = [_split_messages(m, i) for i, m in enumerate(_column(dataset, "messages"))]
        prompts = [p for p, _ in split]
        references = [r for _, r in split]
    else:
        raise ValueError(
            f"The dataset has no usable prompt (columns: {names}). Give a 'prompt' column (prompt-only or "
            "prompt/completion, as strings or message lists), or a 'messages' column ending in an assistant turn."
        )
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            if not prompt.strip():
                raise ValueError(f"Row {i} has an empty prompt; remove it or fill it in.")
        elif not (isinstance(prompt, list) and prompt and all(isinstance(m, dict) for m in prompt)):
            raise ValueError(
                f"Row {i}: a prompt must be a string or a non-empty list of messages, got {prompt!r} "
                f"({type(prompt).__name__}). Map the column to text first, e.g. "
                "`dataset.map(lambda r: {'prompt': str(r['prompt'])})`."
            )
    conversational = is_conversational({"prompt": prompts[0]})
    if any(is_conversational({"prompt": p}) != conversational for p in prompts):
        raise ValueError("The prompts mix plain strings and message lists; use one format for the whole dataset.")

    precomputed = None
    if candidates_column is not None:
        if candidates_column not in names:
            raise ValueError(
                f"candidates_column={candidates_column!r} is not a dataset column (columns: {names}). Set it to "
                "the column that holds each row's list of candidate strings, or leave it unset."
            )
        precomputed = []
        for i, cands in enumerate(_column(dataset, candidates_column)):
            if cands is not None and not (isinstance(cands, (list, tuple)) and all(isinstance(c, str) for c in cands)):
                raise ValueError(
                    f"Row {i} of candidates_column {candidates_column!r} is {cands!r}; it must be a list of strings "
                    "(candidate completions), e.g. ['first answer', 'second answer']."
                )
            precomputed.append(list(cands or []))
    if include_reference and references is None:
        raise ValueError(
            "include_reference=True needs a reference completion: a 'completion' column, or a 'messages' column "
            "ending in an assistant turn."
        )
    skip = set(RESERVED) | {candidates_column}
    columns = {c: _column(dataset, c) for c in dataset.column_names if c not in skip}
    return PromptData(prompts, references, precomputed, columns, conversational)


def as_completion(text: str, conversational: bool) -> str | list[dict]:
    """A completion in the dataset's format, as GRPO passes it to rewards."""
    return [{"role": "assistant", "content": text}] if conversational else text


def reference_text(reference: Any) -> str:
    if isinstance(reference, str):
        return reference
    return "".join(str(m.get("content") or "") for m in reference)
