"""Typed round records: a `Candidate` per sample, a `RoundRecord` per prompt, stored as JSON lines.

`output_dir/rounds/round-NNNNN.jsonl` holds one `RoundRecord.to_json()` per line. Each file is written to a temporary
name and renamed, so a crash never leaves half a round. The derived fields `winner` and `dropped` are written for
readers of the JSON (`load_dataset("json", ...)`), and recomputed, not trusted, when a record is read back.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROUNDS_DIR = "rounds"


@dataclass
class Candidate:
    """One sampled (or given) completion. `ids` are in the policy tokenizer, whatever produced the text."""

    text: str
    source: str
    num_tokens: int
    finished: bool = True  # stopped at EOS, not at max_completion_length
    scores: dict[str, float | None] = field(default_factory=dict)
    combined: float | None = None
    feasible: bool = True
    ids: list[int] | None = field(default=None, repr=False, compare=False)  # not stored

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "num_tokens": self.num_tokens, "finished": self.finished,
                "scores": self.scores, "combined": self.combined, "feasible": self.feasible}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Candidate:
        return cls(row["text"], row["source"], row["num_tokens"], row.get("finished", True), row.get("scores", {}),
                   row.get("combined"), row.get("feasible", True))


@dataclass
class RoundRecord:
    """One prompt of one round: every candidate with its scores, and the indices of the winners."""

    round: int
    epoch: int
    global_step: int
    prompt_idx: int
    prompt: Any
    candidates: list[Candidate]
    winners: list[int]
    failures: list[dict[str, str]] = field(default_factory=list)  # {"source", "error"}: requests that failed

    @property
    def winner(self) -> str | None:
        return self.candidates[self.winners[0]].text if self.winners else None

    @property
    def dropped(self) -> bool:
        return not self.winners

    def winning(self) -> list[Candidate]:
        return [self.candidates[w] for w in self.winners]

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, "epoch": self.epoch, "global_step": self.global_step,
                "prompt_idx": self.prompt_idx, "prompt": self.prompt,
                "candidates": [c.to_json() for c in self.candidates], "winners": self.winners,
                "winner": self.winner, "dropped": self.dropped, "failures": self.failures}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> RoundRecord:
        return cls(row["round"], row["epoch"], row["global_step"], row["prompt_idx"], row["prompt"],
                   [Candidate.from_json(c) for c in row["candidates"]], list(row["winners"]),
                   list(row.get("failures", [])))


def round_path(output_dir: str, round_id: int) -> Path:
    return Path(output_dir) / ROUNDS_DIR / f"round-{round_id:05d}.jsonl"


def write_round(output_dir: str, round_id: int, records: list[RoundRecord]) -> Path:
    path = round_path(output_dir, round_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # a crash never leaves a half-written round
    return path


def read_round(output_dir: str, round_id: int) -> list[RoundRecord] | None:
    path = round_path(output_dir, round_id)
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as f:
        return [RoundRecord.from_json(json.loads(line)) for line in f if line.strip()]


def set_aside_old_rounds(output_dir: str) -> Path | None:
    """Move records of an earlier run out of the way (never delete them) before a fresh run writes its own."""
    folder = Path(output_dir) / ROUNDS_DIR
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    target = folder.with_name(f"{ROUNDS_DIR}-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.rename(target)
    return target
