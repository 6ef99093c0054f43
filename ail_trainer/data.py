"""Normalize every prompt-bearing SFT dataset format into prompts, references and reward columns."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, IterableDataset
from trl.data_utils import is_conversational, maybe_convert_to_chatml

RESERVED = ("prompt", "completion", "messages", "conversations")
TEMPLATE_COLUMNS = ("tools", "chat_template_kwargs")  # per-row chat-template arguments, as SFTTrainer reads them


@dataclass(frozen=True)
class Precomputed:
    """One precomputed candidate; `finished` False marks a text cut at a length limit (then `truncated_winners`
    applies to it as to a sampled candidate)."""

    text: str
    finished: bool = True


@dataclass
class PromptData:
    """The training prompts, in their original format (a string or a list of messages)."""

    prompts: list[Any]
    references: list[Any] | None
    precomputed: list[list[Precomputed]] | None
    columns: dict[str, list[Any]]  # every other column, passed to rewards as keyword arguments
    conversational: bool

    def __len__(self) -> int:
        return len(self.prompts)

    def extend(self, other: PromptData) -> None:
        """Append `other`'s prompts (a later chunk of a stream, in the same format)."""
        if other.conversational != self.conversational or set(other.columns) != set(self.columns):
            raise ValueError("A later chunk of the streamed dataset changes format (conversational or columns); "
                             "every row must have the same columns and prompt format.")
        self.prompts += other.prompts
        if self.references is not None:
            self.references += other.references or [None] * len(other)
        if self.precomputed is not None:
            self.precomputed += other.precomputed or [[] for _ in range(len(other))]
        for key, values in other.columns.items():
            self.columns[key] += values

    def template_kwargs(self, idx: int) -> dict[str, Any]:
        """Row `idx`'s chat-template arguments, as SFTTrainer applies them: its `chat_template_kwargs` and `tools`."""
        kwargs = dict(self.columns["chat_template_kwargs"][idx] or {}) if "chat_template_kwargs" in self.columns else {}
        tools = self.columns["tools"][idx] if "tools" in self.columns else None
        if tools is not None:
            kwargs["tools"] = json.loads(tools) if isinstance(tools, str) else tools
        return kwargs

    def template_columns(self, idx: int) -> dict[str, Any]:
        """Row `idx`'s template columns as they are, for SFT rows that SFTTrainer's preparation renders."""
        return {c: self.columns[c][idx] for c in TEMPLATE_COLUMNS if c in self.columns}

    @property
    def has_template_kwargs(self) -> bool:
        return any(c in self.columns for c in TEMPLATE_COLUMNS)

    def to_dataset(self) -> Dataset:
        data = {"prompt": self.prompts, **self.columns}
        if self.references is not None:
            data["completion"] = self.references
        return Dataset.from_dict(data)


def _column(dataset: Dataset, name: str) -> list:
    """A whole column as a list, read in one batch (iterating a column formats row by row: ~70x slower). Decoded
    through the features, so a column datasets stores as JSON (rows of differently shaped mappings) comes back as
    mappings, not JSON strings."""
    return dataset.select_columns([name])[:][name]


def _split_messages(messages: list[dict], row: int) -> tuple[list[dict], list[dict]]:
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        raise ValueError(
            f"Row {row} of the 'messages' column has no assistant turn; the prompt is taken as the turns before "
            "the last assistant turn. Add one, or give a 'prompt' column."
        )
    return messages[:last], [messages[last]]


_SENTENCE = re.compile(r"\S.*?[.!?](?=\s|$)", re.S)


def split_text(text: str, mode: str = "sentence", size: float | None = None) -> tuple[str, str]:
    """Split a language-modeling text into a prompt to continue and the reference continuation.

    'sentence': the first sentence; 'words': the first `size` words (32); 'fraction': the first `size` (0.5) of the
    words. The prompt keeps at least one word and, when the text has two or more, leaves at least one to continue.
    """
    words = text.split()
    if mode == "sentence":
        match = _SENTENCE.search(text)
        cut = len(match.group(0).split()) if match else len(words) // 2
    elif mode == "words":
        cut = int(size or 32)
    else:
        cut = round(len(words) * (0.5 if size is None else size))
    cut = max(1, min(cut, len(words) - 1)) if len(words) > 1 else len(words)
    # Keep the original spacing: find where the `cut`-th word ends in the text.
    end = 0
    for word in words[:cut]:
        end = text.index(word, end) + len(word)
    return text[:end], text[end:]


def _from_tokens(dataset: Dataset, tokenizer: Any) -> tuple[list[str], list[str] | None]:
    """Pre-tokenized rows: split at the first assistant (or completion) token, or continue the decoded text."""
    if tokenizer is None:
        raise ValueError("Pre-tokenized data (an 'input_ids' column) needs the tokenizer to decode prompts; pass "
                         "processing_class=.")
    ids = _column(dataset, "input_ids")
    mask_name = next((m for m in ("assistant_masks", "completion_mask") if m in dataset.column_names), None)
    if mask_name is None:
        return [tokenizer.decode(x) for x in ids], None
    prompts, references = [], []
    for i, (row, mask) in enumerate(zip(ids, _column(dataset, mask_name))):
        start = next((t for t, m in enumerate(mask) if m), None)
        if not start:
            raise ValueError(f"Row {i}: its {mask_name} {'marks no token' if start is None else 'starts at token 0'}"
                             "; the prompt is the tokens before the first marked one. Mark the assistant tokens "
                             "only, or give a 'prompt' column.")
        prompts.append(tokenizer.decode(row[:start]))
        references.append(tokenizer.decode(row[start:], skip_special_tokens=True))
    return prompts, references


@dataclass
class PromptLoader:
    """Turns a dataset, or a streamed chunk of one, into `PromptData` with the config's format settings.
    Pre-tokenized rows are decoded with `tokenizer`; without one, the model's own is loaded when first needed."""

    args: Any
    model: Any  # a name or a loaded model
    tokenizer: Any = None
    formatting_func: Callable | None = None

    def __call__(self, dataset: Dataset) -> PromptData:
        if self.tokenizer is None and "input_ids" in dataset.column_names:
            from transformers import AutoTokenizer

            name = self.model if isinstance(self.model, str) else self.model.name_or_path
            self.tokenizer = AutoTokenizer.from_pretrained(name)
        a = self.args
        return load_prompt_data(
            dataset, a.candidates_column, a.include_reference, text_field=a.dataset_text_field,
            text_split=a.text_prompt_split, text_size=a.text_prompt_size, formatting_func=self.formatting_func,
            tokenizer=getattr(self.tokenizer, "tokenizer", self.tokenizer))


def load_prompt_data(dataset: Any, candidates_column: str | None = None, include_reference: bool = False,
                     text_field: str = "text", text_split: str = "sentence", text_size: float | None = None,
                     formatting_func: Any = None, tokenizer: Any = None) -> PromptData:
    """Extract prompts from `prompt`/`completion`, prompt-only, `messages` or ShareGPT `conversations` data; from
    language-modeling text (`text_field`, or what `formatting_func` makes of each row), whose prefix is the prompt
    (`split_text`); or from pre-tokenized `input_ids`, decoded with `tokenizer`."""
    if isinstance(dataset, IterableDataset):
        raise TypeError("load_prompt_data reads a map-style Dataset; the trainer streams an IterableDataset "
                        "through `PromptStream`.")
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

    if formatting_func is not None:  # as SFTTrainer applies it: each row becomes one language-modeling text
        texts = [formatting_func(row) for row in dataset]
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueError(f"formatting_func returned {type(texts[bad]).__name__} for row {bad}; it must return "
                             "one string per row (the text SFTTrainer would train on).")
        dataset = Dataset.from_dict({text_field: texts, **{c: _column(dataset, c) for c in names
                                                            if c not in RESERVED + (text_field,)}})
        names = dataset.column_names

    if "prompt" not in names and "messages" not in names and (text_field in names or "input_ids" in names):
        if text_field in names:
            texts = _column(dataset, text_field)
            empty = next((i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()), None)
            if empty is not None:
                raise ValueError(f"Row {empty} of the {text_field!r} column is empty or not a string; remove it or "
                                 "fill it in.")
            split = [split_text(t, text_split, text_size) for t in texts]
            prompts, references = [p for p, _ in split], [r for _, r in split]
        else:
            prompts, references = _from_tokens(dataset, tokenizer)
        consumed = {text_field, "input_ids", "assistant_masks", "completion_mask", "attention_mask"}
        data = {"prompt": prompts, **({"completion": references} if references is not None else {})}
        dataset = Dataset.from_dict({**data, **{c: _column(dataset, c) for c in names if c not in consumed}})
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
            "prompt/completion, as strings or message lists), a 'messages' column ending in an assistant turn, a "
            f"{text_field!r} column of texts to continue (or set dataset_text_field), or 'input_ids'."
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
        precomputed = [precomputed_row(i, cands, candidates_column)
                       for i, cands in enumerate(_column(dataset, candidates_column))]
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


def precomputed_row(i: int, cands: Any, column: str) -> list[Precomputed]:
    """A row of `candidates_column`: strings, or mappings {"text": ..., "finished": ...}."""
    def one(c: Any) -> Precomputed | None:
        if isinstance(c, str):
            return Precomputed(c)
        if isinstance(c, dict) and isinstance(c.get("text"), str) and isinstance(c.get("finished", True), bool):
            return Precomputed(c["text"], c.get("finished", True))
        return None

    row = [one(c) for c in cands] if isinstance(cands, (list, tuple)) else [None]
    if cands is not None and any(c is None for c in row):
        raise ValueError(
            f"Row {i} of candidates_column {column!r} is {cands!r}; it must be a list of strings (candidate "
            "completions), e.g. ['first answer', 'second answer'], or of mappings {'text': ..., 'finished': bool} "
            "where `finished` False marks an answer cut at a length limit."
        )
    return row if cands is not None else []
