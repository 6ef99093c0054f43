"""The round without a Trainer: sources -> candidates -> scores -> selection -> records -> winner rows."""

from contextlib import nullcontext

import numpy as np
import pytest

from ail_trainer.data import load_prompt_data
from ail_trainer.generation import SamplingSettings
from ail_trainer.prompts import prompt_dataset
from ail_trainer.records import Candidate, RoundRecord, read_round, write_round
from ail_trainer.round import round_stats, run_round, winner_rows
from ail_trainer.selection import Selection
from ail_trainer.sources import ModelSource, TextSource


def count_e(completions, **kwargs):
    return [float(c.count("e")) for c in completions]


def token_count(completion_ids, **kwargs):
    return [float(len(ids)) for ids in completion_ids]


def selection(names, weights=None, **kw):
    return Selection(names, np.asarray(weights or [1.0] * len(names)), **kw)


def model_source(name, model, tok, encode, k=3, policy=True):
    return ModelSource(name, lambda: nullcontext(model), tok, k, SamplingSettings(8), encode, conversational=False,
                       is_policy_tokenizer=policy, batch_size=4, show_progress=False)


@pytest.fixture
def data():
    return load_prompt_data(prompt_dataset("train").select(range(6)))


def test_run_round_picks_the_argmax_and_records_round_trip(tiny, data, tmp_path):
    model, tok = tiny
    encode = lambda t: tok(t, add_special_tokens=False)["input_ids"]
    fixed = TextSource("fixed", lambda i: ["eeeeeeeeeeeeeeeeeeee", ""], encode)
    result = run_round(3, 1, 7, [0, 2, 4], data, [model_source("policy", model, tok, encode), fixed], [count_e],
                       selection(["count_e"]), seed=0)
    assert [r.prompt_idx for r in result.records] == [0, 2, 4]
    for rec in result.records:
        assert isinstance(rec, RoundRecord) and (rec.round, rec.epoch, rec.global_step) == (3, 1, 7)
        assert [c.source for c in rec.candidates] == ["policy"] * 3 + ["fixed"] * 2
        scores = [c.scores["count_e"] for c in rec.candidates]
        assert scores == [float(c.text.count("e")) for c in rec.candidates]
        assert rec.winners == [int(np.argmax(scores))] and rec.winner == rec.candidates[rec.winners[0]].text
    assert result.generated_tokens == sum(c.num_tokens for r in result.records for c in r.candidates[:3])
    write_round(str(tmp_path), 3, result.records)
    assert read_round(str(tmp_path), 3) == result.records  # ids are not stored and not compared


def test_same_seed_same_round_other_seed_other_samples(tiny, data):
    model, tok = tiny
    encode = lambda t: tok(t, add_special_tokens=False)["input_ids"]
    texts = lambda seed: [c.text for r in run_round(0, 0, 0, [0, 1], data, [model_source("policy", model, tok, encode)],
                                                  [count_e], selection(["count_e"]), seed=seed).records
                          for c in r.candidates]
    assert texts(1) == texts(1) and texts(1) != texts(2)


def test_rewards_get_policy_token_ids_for_teacher_candidates(tiny, data, tmp_path):
    """A teacher with another tokenizer: its texts are re-encoded, so token lengths are in the policy's tokens."""
    from ail_trainer.testing import build_tiny_model, load

    model, tok = tiny
    teacher, teacher_tok = load(build_tiny_model(tmp_path / "teacher", arch="gpt2", vocab_size=300, seed=3))
    encode = lambda t: tok(t, add_special_tokens=False)["input_ids"]
    source = model_source("teacher:t", teacher, teacher_tok, encode, k=2, policy=False)
    result = run_round(0, 0, 0, [0, 1], data, [source], [token_count], selection(["token_count"]), seed=0)
    for cand in (c for r in result.records for c in r.candidates):
        assert cand.ids == encode(cand.text) and cand.num_tokens == len(encode(cand.text))
        assert cand.scores["token_count"] == len(encode(cand.text))


def test_padding_rows_are_generated_but_not_recorded(tiny, data):
    model, tok = tiny
    encode = lambda t: tok(t, add_special_tokens=False)["input_ids"]
    seen = []
    source = TextSource("fixed", lambda i: seen.append(i) or ["a"], encode)
    result = run_round(0, 0, 0, [5], data, [source], [count_e], selection(["count_e"]), pad_to=3)
    assert seen == [5, 5, 5] and [r.prompt_idx for r in result.records] == [5]


def test_constraints_min_score_and_top_n(data):
    texts = {0: ["eee", "e", "eeeee", ""], 1: ["", ""]}
    source = TextSource("fixed", lambda i: texts[i], lambda t: list(range(len(t))))
    short = lambda completions, **kw: [-float(len(c)) for c in completions]
    sel = selection(["count_e", "short"], [1.0, 0.0], constraints={1: -4.0}, top_n=2, min_score=1.0)
    records = run_round(0, 0, 0, [0, 1], data, [source], [count_e, short], sel).records
    assert records[0].winners == [0, 1]  # "eeeee" breaks the constraint; "" scores below min_score
    assert [c.feasible for c in records[0].candidates] == [True, True, False, True]
    assert records[1].winners == [] and records[1].dropped and records[1].winner is None
    rows = winner_rows(records, {0, 1}, data)
    assert [(r["_ai_prompt_idx"], r["completion"]) for r in rows] == [(0, "eee"), (0, "e")]
    stats = round_stats(0, records, ["count_e", "short"])
    assert stats["ai/dropped_fraction"] == 0.5
    assert stats["ai/count_e/winners_mean"] == 2.0 and stats["ai/count_e/candidates_mean"] == pytest.approx(9 / 6)


def test_old_records_read_through_the_type(tmp_path):
    """A record file as written before the types existed (same schema) reads back, derived fields recomputed."""
    import json

    row = {"round": 0, "epoch": 0, "global_step": 0, "prompt_idx": 4, "prompt": "Hi?",
           "candidates": [{"text": "a", "source": "policy", "num_tokens": 1, "finished": True, "scores": {"m": 1.0},
                           "combined": 1.0, "feasible": True}], "winners": [0], "winner": "stale", "dropped": True}
    (tmp_path / "rounds").mkdir()
    (tmp_path / "rounds" / "round-00000.jsonl").write_text(json.dumps(row) + "\n")
    (rec,) = read_round(str(tmp_path), 0)
    assert rec.winner == "a" and not rec.dropped and rec.candidates == [Candidate("a", "policy", 1, True, {"m": 1.0},
                                                                                  1.0, True)]
