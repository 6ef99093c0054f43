"""Per-round candidate records under `output_dir/rounds`, written atomically as JSON lines."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ROUNDS_DIR = "rounds"


def round_path(output_dir: str, round_id: int) -> Path:
    return Path(output_dir) / ROUNDS_DIR / f"round-{round_id:05d}.jsonl"


def write_round(output_dir: str, round_id: int, records: list[dict[str, Any]]) -> Path:
    path = round_path(output_dir, round_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # a crash never leaves a half-written round
    return path


def read_round(output_dir: str, round_id: int) -> list[dict[str, Any]] | None:
    path = round_path(output_dir, round_id)
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def set_aside_old_rounds(output_dir: str) -> Path | None:
    """Move records of an earlier run out of the way (never delete them) before a fresh run writes its own."""
    folder = Path(output_dir) / ROUNDS_DIR
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    target = folder.with_name(f"{ROUNDS_DIR}-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.rename(target)
    return target
