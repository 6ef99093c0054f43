"""The built-in prompt sets: sizes, kinds, and a train/test split by topic."""

from ail_trainer.profiling.data import load_rows
from ail_trainer.prompts import load_instructions, load_prompts


def test_instructions_are_many_varied_and_split_by_topic():
    train, test = load_instructions("train"), load_instructions("test")
    assert len(train) + len(test) >= 400 and len(test) >= 40
    assert not {r["topic"] for r in train} & {r["topic"] for r in test}
    kinds = {"explanation", "advice", "story", "letter", "how-to", "comparison", "opinion"}
    assert {r["kind"] for r in train} == {r["kind"] for r in test} == kinds
    prompts = [r["prompt"] for r in train + test]
    assert len(set(prompts)) == len(prompts)


def test_toy_prompts_keep_their_split():
    assert not {r["topic"] for r in load_prompts("train")} & {r["topic"] for r in load_prompts("test")}


def test_toxicity_starters():
    rows = load_rows("builtin:toxicity", "toxicity")
    prompts = [r["prompt"] for r in rows]
    assert len(set(prompts)) == len(prompts) >= 100
    assert all(not p.rstrip().endswith(".") for p in prompts)  # starters, left open to be continued
