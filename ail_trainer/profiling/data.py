"""Prompt and item sets for profiling: local JSON/JSONL files, hub datasets, or the shipped example sets."""

from __future__ import annotations

import json
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "profiling"
BUILTIN = {
    "builtin:instructions": None,  # the built-in instructions' held-out split
    "builtin:toxicity": RESOURCES / "toxicity_prompts.jsonl",
    # heated starters that invite a rude continuation, split by target (scripts/build_provocative_starters.py)
    "builtin:provocative": RESOURCES / "provocative_starters.jsonl",
    "builtin:calibration": RESOURCES / "calibration_items.jsonl",
    "builtin:bbq": RESOURCES / "bbq_items.jsonl",
}
SCHEMAS = {
    "textual": ("prompt",),
    "toxicity": ("prompt",),
    "calibration": ("context", "options", "gold"),
    "bias": ("category", "context_condition", "context", "question", "options", "answer_types", "gold"),
    "texts": ("text",),
}


def load_rows(source: str, kind: str, split: str = "test", limit: int | None = None) -> list[dict]:
    """Rows of `source` (a shipped set, a local .json/.jsonl file, or a hub dataset name) checked against `kind`."""
    if source == "builtin:instructions":
        from ..prompts import load_instructions

        rows = [{"prompt": r["prompt"]} for r in load_instructions("test")]
    elif source in BUILTIN:
        rows = _read(BUILTIN[source])
        if rows and "split" in rows[0]:
            rows = [r for r in rows if r["split"] == split]
    elif Path(source).exists():
        rows = _read(Path(source))
    else:
        from datasets import load_dataset

        rows = list(load_dataset(source, split=split))
    if kind == "texts" and rows and "text" not in rows[0]:
        for key in ("completion", "winner", "response", "output"):
            if key in rows[0]:
                rows = [{"text": r[key] if isinstance(r[key], str) else "" } for r in rows]
                break
    missing = [k for k in SCHEMAS[kind] if rows and k not in rows[0]]
    if not rows or missing:
        raise ValueError(
            f"{source!r} cannot be used for the {kind} protocol: "
            + (f"its rows lack {missing}; " if missing else "it has no rows; ")
            + f"each row needs {list(SCHEMAS[kind])} (see the README's profiling schemas)."
        )
    for i, row in enumerate(rows):
        row.setdefault("id", str(i))
    return rows[:limit] if limit else rows


def _read(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else data["data"]
    return [json.loads(line) for line in text.splitlines() if line.strip()]
