"""Built-in prompt sets written for this project, split by topic into train and test.

- `builtin:prompts`: short instructions with short reference answers, sized for the toy model;
- `builtin:instructions`: 490 varied instructions (explanations, advice, stories, letters, how-tos, comparisons,
  opinions) for real models, prompt-only and conversational: a system turn asks for a few sentences, since small
  instruct models otherwise answer at great length.
"""

from __future__ import annotations

import json
from pathlib import Path

PROMPTS_FILE = Path(__file__).parent / "resources" / "prompts.jsonl"
INSTRUCTIONS_FILE = Path(__file__).parent / "resources" / "instructions.jsonl"


def load_prompts(split: str = "train") -> list[dict]:
    """Rows with `prompt`, a short reference `completion`, and `topic`; test topics never appear in train."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}.")
    rows = [json.loads(line) for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k != "split"} for r in rows if split == "all" or r["split"] == split]


def prompt_dataset(split: str = "train", with_completion: bool = True):
    from datasets import Dataset

    rows = load_prompts(split)
    if not with_completion:
        rows = [{k: v for k, v in r.items() if k != "completion"} for r in rows]
    return Dataset.from_list(rows)


def load_instructions(split: str = "train") -> list[dict]:
    """Rows with `prompt`, `topic` and `kind`; test topics never appear in train."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}.")
    rows = [json.loads(line) for line in INSTRUCTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k != "split"} for r in rows if split == "all" or r["split"] == split]


SYSTEM_PROMPT = "Answer in a few sentences."


def as_chat(instruction: str, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    """An instruction as a conversational prompt (a short system turn asking for brief answers, then the user)."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": instruction}]


def instruction_dataset(split: str = "train"):
    """Conversational prompts (rendered with the model's chat template), with `topic` and `kind` columns."""
    from datasets import Dataset

    return Dataset.from_list([{**r, "prompt": as_chat(r["prompt"])} for r in load_instructions(split)])
