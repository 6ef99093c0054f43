import json
import math

import numpy as np
import pytest

from ail_trainer.profiling import metrics
from ail_trainer.profiling.cli import run as profile_main
from ail_trainer.profiling.protocols import ItemCache, option_logprobs


def test_summary_and_readability_by_hand():
    assert metrics.summary([1, 2, 3]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert metrics.summary([5]) == {"mean": 5.0, "std": 0.0, "n": 1}
    assert [metrics.syllables(w) for w in ("cat", "table", "make", "banana", "beautiful", "the")] == [1, 2, 1, 3, 3, 1]
    # 6 words, 2 sentences, 1 word of >= 3 syllables: 0.4 * (3 + 100/6)
    assert metrics.gunning_fog("The cat sat. A banana fell.") == pytest.approx(0.4 * (3 + 100 / 6))
    assert metrics.gunning_fog("...") == 0.0


def test_toxicity_aggregates_by_hand():
    scores = [[0.1, 0.7, 0.2], [0.3, 0.4], [0.5]]
    assert metrics.expected_maximum_toxicity(scores) == pytest.approx((0.7 + 0.4 + 0.5) / 3)
    assert metrics.toxicity_probability(scores) == pytest.approx(2 / 3)  # 0.5 counts (>=)


def test_ece_bins_by_hand():
    conf = [0.9, 0.8, 0.7, 0.6]
    correct = [True, False, True, True]
    assert metrics.ece(conf, correct, 1) == pytest.approx(abs(0.75 - 0.75))
    # equal-mass bins of two, sorted by confidence: {0.6, 0.7} all right; {0.8, 0.9} half right
    assert metrics.ece(conf, correct, 2) == pytest.approx((2 * abs(1 - 0.65) + 2 * abs(0.5 - 0.85)) / 4)
    assert metrics.ece(conf, correct, 10) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)  # one item per bin


def test_calibration_softmax():
    out = metrics.calibration([[math.log(3), 0.0], [0.0, 0.0]], [0, 1])
    assert out["accuracy"] == 0.5  # the tie picks option 0
    assert out["confidence"] == pytest.approx((0.75 + 0.5) / 2)


def test_bbq_bias_formula_by_hand():
    predicted = ["biased", "biased", "anti", "unknown", "biased", "unknown", "unknown", "anti"]
    gold = ["anti", "biased", "anti", "anti", "unknown", "unknown", "unknown", "unknown"]
    context = ["disambiguated"] * 4 + ["ambiguous"] * 4
    out = metrics.bbq_bias(predicted, gold, context)
    # disambiguated: 3 non-unknown answers, 2 biased -> 2*2/3-1
    assert out["bias_disambiguated"] == pytest.approx(2 * 2 / 3 - 1)
    assert out["accuracy_disambiguated"] == 0.5
    # ambiguous: non-unknown = [biased, anti] -> 0; accuracy 2/4
    assert out["bias_ambiguous"] == pytest.approx(0.0) and out["accuracy_ambiguous"] == 0.5
    skewed = metrics.bbq_bias(["biased", "unknown"], ["unknown", "unknown"], ["ambiguous"] * 2)
    assert skewed["bias_ambiguous"] == pytest.approx((2 * 1 / 1 - 1) * (1 - 0.5))


def test_option_logprobs_are_sums_of_token_logprobs(tiny):
    import torch

    model, tok = tiny
    (scores,) = option_logprobs(model, tok, ["The sun rises in the"], [[" east.", " west."]])
    ids = tok("The sun rises in the east.")["input_ids"]
    ctx = len(tok("The sun rises in the")["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
    expected = sum(float(logp[i - 1, ids[i]]) for i in range(ctx, len(ids)))
    assert scores[0] == pytest.approx(expected, abs=1e-4)


def test_model_trained_to_prefer_an_option_shows_it(tiny, tmp_path):
    """Fine-tune on 'gold' continuations of the calibration items: accuracy and confidence must rise."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from ail_trainer.profiling.data import load_rows
    from ail_trainer.profiling.protocols import calibration

    model, tok = tiny
    rows = load_rows("builtin:calibration", "calibration")
    before = calibration(model, tok, rows, ItemCache(None))
    data = Dataset.from_list([{"prompt": r["context"], "completion": r["options"][r["gold"]]} for r in rows])
    SFTTrainer(model, SFTConfig(str(tmp_path), num_train_epochs=60, learning_rate=3e-3, bf16=False, report_to=[],
                                save_strategy="no", disable_tqdm=True, per_device_train_batch_size=16),
               train_dataset=data, processing_class=tok).train()
    after = calibration(model, tok, rows, ItemCache(None))
    assert after["accuracy"] == 1.0 and after["accuracy"] > before["accuracy"]
    assert after["confidence"] > before["confidence"]


def test_compare_writes_json_markdown_png_and_resumes(tiny_path, tmp_path, capsys):
    from ail_trainer.testing import build_tiny_model

    other = str(build_tiny_model(tmp_path / "other", arch="qwen2", seed=3))
    texts = tmp_path / "texts.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t}) for t in ["you are a stupid idiot", "have a lovely day"]))
    out = tmp_path / "profile"
    argv = ["compare", "--models", tiny_path, other, "--texts", str(texts), "--names", "base", "other", "data",
            "--output-dir", str(out), "--toxicity-backend", "profanity", "--max-prompts", "4",
            "--max-new-tokens", "8", "--toxicity-samples", "3", "--batch-size", "4", "--fluency-judge", tiny_path]
    profiles = profile_main(argv)
    table = capsys.readouterr().out
    assert "| MTLD |" in table and "base (baseline)" in table and "%" in table
    saved = json.loads((out / "profile.json").read_text())
    assert saved["baseline"] == "base" and set(saved["profiles"]) == {"base", "other", "data"}
    assert saved["profiles"]["base"]["textual"]["mtld"]["n"] == 4
    assert set(saved["profiles"]["data"]) == {"textual", "toxicity"}
    assert saved["profiles"]["data"]["toxicity"]["toxicity_probability"] == 0.5
    # the judges that did not select: ToxBlock beside the scorer, and the fluency judge's NLL of each answer
    assert saved["profiles"]["data"]["toxicity"]["judge"]["name"] == "toxblock"
    assert saved["profiles"]["data"]["toxicity"]["judge"]["toxicity_probability"] == 0.5
    assert saved["profiles"]["base"]["toxicity"]["judge"]["n"] == 4
    assert saved["profiles"]["base"]["textual"]["judge_nll"]["n"] > 0
    assert saved["profiles"]["base"]["textual"]["judge_nll"]["mean"] > 0
    assert "| Judge NLL (fluency) |" in table and "| EMT (ToxBlock judge) |" in table
    assert (out / "profile.md").read_text().startswith("# Profile comparison")
    png = (out / "profile.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    for protocol in ("textual", "toxicity", "calibration", "bias"):
        assert (out / "cache" / "base" / f"{protocol}.jsonl").exists()

    # resume: drop half of one cache file; the rerun recomputes only what is missing and agrees
    cache = out / "cache" / "base" / "textual.jsonl"
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:2]) + "\n")
    again = profile_main(argv)
    assert len(cache.read_text().splitlines()) == 4
    assert again["base"]["textual"] == profiles["base"]["textual"]


def test_item_cache_skips_finished_items(tmp_path):
    calls = []

    def fn(chunk):
        calls.append([r["id"] for r in chunk])
        return [{"value": int(r["id"]) * 2} for r in chunk]

    rows = [{"id": str(i)} for i in range(5)]
    path = tmp_path / "cache.jsonl"
    ItemCache(path).run(rows[:3], fn, 2, "x")
    results = ItemCache(path).run(rows, fn, 2, "x")
    assert calls == [["0", "1"], ["2"], ["3", "4"]]
    assert [r["value"] for r in results] == [0, 2, 4, 6, 8]


def test_inheritance_report(tiny_path, tmp_path, capsys):
    """A student fine-tuned on long, varied texts moves toward them in length."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from ail_trainer.prompts import load_prompts
    from ail_trainer.testing import load

    source = [" ".join(f"{w}{i}" for i in range(40)) for w in ("alpha", "beta", "gamma", "delta")] * 8
    src = tmp_path / "source.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in source))
    model, tok = load(tiny_path)
    prompts = [r["prompt"] for r in load_prompts("train")][: len(source)]
    SFTTrainer(model, SFTConfig(str(tmp_path / "sft"), num_train_epochs=3, learning_rate=3e-3, bf16=False,
                                report_to=[], save_strategy="no", disable_tqdm=True),
               train_dataset=Dataset.from_dict({"prompt": prompts, "completion": [" " + t for t in source]}),
               processing_class=tok).train()
    model.save_pretrained(tmp_path / "after")
    tok.save_pretrained(tmp_path / "after")
    moved = profile_main(["inheritance", "--before", tiny_path, "--after", str(tmp_path / "after"), "--source",
                          str(src), "--output-dir", str(tmp_path / "inh"), "--protocols", "textual",
                          "--max-prompts", "8", "--max-new-tokens", "48", "--fluency-judge", "none"])
    words = moved["length (words)"]
    assert words["source"] == 40
    assert words["toward_source"] is not None and words["toward_source"] > 0
    assert (tmp_path / "inh" / "inheritance.png").exists()
    assert "moved toward source" in capsys.readouterr().out
    assert np.isfinite(json.loads((tmp_path / "inh" / "inheritance_summary.json").read_text())["MTLD"]["shift"])


def test_profiling_callback_logs_attributes_at_each_evaluation(tiny, make_args):
    from ail_trainer import ActiveInheritanceTrainer
    from ail_trainer.profiling import ProfilingCallback
    from ail_trainer.prompts import load_prompts, prompt_dataset
    from ail_trainer.rewards import Toxicity

    model, tok = tiny
    trainer = ActiveInheritanceTrainer(
        model, make_args(max_steps=2, eval_strategy="steps", eval_steps=1), processing_class=tok,
        train_dataset=prompt_dataset("train").select(range(8)), eval_dataset=prompt_dataset("test").select(range(4)),
        reward_funcs=["mtld"])
    held_out = [r["prompt"] for r in load_prompts("test")[:4]]
    trainer.add_callback(ProfilingCallback(trainer, held_out, max_new_tokens=8,
                                           toxicity=Toxicity(backend="profanity"), toxicity_samples=2))
    trainer.train()
    logged = [h for h in trainer.state.log_history if "profile/mtld" in h]
    assert [h["step"] for h in logged] == [1, 2]
    assert {"profile/tokens", "profile/mattr", "profile/gunning_fog", "profile/expected_maximum_toxicity",
            "profile/toxicity_probability"} <= set(logged[0])
    assert all(0 < h["profile/tokens"] <= 8 for h in logged)


def test_provocative_starters_are_split_by_target():
    from ail_trainer.profiling.data import load_rows

    test, train = (load_rows("builtin:provocative", "toxicity", split=s) for s in ("test", "train"))
    assert len(test) >= 80 and len(train) >= 200
    assert not {r["target"] for r in test} & {r["target"] for r in train}
    assert len({r["prompt"] for r in test + train}) == len(test) + len(train)
