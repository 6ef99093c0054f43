"""The judges that did not select: ToxBlock's BiLSTM read into torch, the fluency NLL, and the temperature curve."""

import datetime
import pickle

import numpy as np
import pytest
import torch

from ail_trainer.evaluation import FluencyJudge, ToxBlockJudge
from ail_trainer.evaluation.curve import CurvePoint, matched_excess
from ail_trainer.evaluation.measure import Answers, Decoding, sample_answers, score_answers
from ail_trainer.evaluation.toxblock import LABELS, KerasTokenizer, _EncoderUnpickler

# ToxBlock's README: make_predictions(texts, rescale=True), as its Keras model returned them
README = {
    "Good morning my friend, I hope you're having a fantastic day!":
        [0.05347811430692673, 0.0006274021579883993, 0.004466842859983444, 0.009578478522598743,
         0.00757843442261219, 0.002106667961925268],
    "I will kill you, you fucking idiot!":
        [0.9998679757118225, 0.7870362997055054, 0.9885633587837219, 0.8483908176422119, 0.9883397221565247,
         0.171059250831604],
    "I do strongly disagree with the fascist views of this joke that calls itself a political party.":
        [0.026190076023340225, 7.185135473264381e-05, 0.0009493605466559529, 0.00012321282702032477,
         0.0029190618079155684, 0.0022098885383456945],
}


def test_toxblock_matches_the_keras_models_published_outputs():
    judge = ToxBlockJudge()
    probs = judge.probabilities(list(README), rescale=True)
    assert probs.shape == (3, len(LABELS))
    np.testing.assert_allclose(probs.numpy(), np.array(list(README.values())), rtol=1e-3, atol=2e-6)
    raw = judge(list(README))
    assert raw[1] > 0.99 and raw[0] < 0.06 and raw[2] < 0.03
    assert ToxBlockJudge(label="insult")(["I will kill you, you fucking idiot!"])[0] > 0.9
    with pytest.raises(ValueError, match="its labels are"):
        ToxBlockJudge(label="rude")


def test_keras_tokenizer_filters_lowercases_and_pads_before():
    tok = KerasTokenizer({"the": 1, "cat": 2, "sat": 3, "rare": 5}, num_words=5, filters='!,.', max_length=4)
    assert tok.encode("The CAT, sat!") == [0, 1, 2, 3]
    assert tok.encode("unknown rare") == [0, 0, 0, 0]  # index 5 is past num_words, an unknown word is dropped
    assert tok.encode("the cat sat the cat") == [2, 3, 1, 2]  # cut at the front ('pre')


def test_encoder_unpickler_refuses_other_classes(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(datetime.date(2020, 1, 1)))
    with open(path, "rb") as f, pytest.raises(pickle.UnpicklingError, match="does not expect"):
        _EncoderUnpickler(f).load()


def test_fluency_judge_is_the_answers_mean_nll_given_the_templated_question(tiny_path, tiny):
    model, tok = tiny
    judge = FluencyJudge(tiny_path, max_length=None, batch_size=4)
    prompt = [{"role": "user", "content": "hello there"}]
    assert judge.render(prompt) == "### Question: hello there\n ### Answer: "
    assert judge.render("a text to continue") == "a text to continue"
    # prompts and answers of different lengths share a batch (prompts padded on the left, answers on the right)
    prompts = [prompt, [{"role": "user", "content": "what is the weather like in the hills today"}], prompt, ""]
    answers = ["good day", "it rains on the hills and the valleys", "", "a text with no prompt"]
    nll = judge(prompts, answers)

    def expected(prefix_text: str, answer: str) -> float:
        prefix = tok(prefix_text)["input_ids"] if prefix_text else []
        ids = prefix + tok(answer, add_special_tokens=False)["input_ids"]
        start = max(len(prefix), 1)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, start - 1 : -1]
        return float(torch.nn.functional.cross_entropy(logits.float(), torch.tensor(ids[start:])))

    assert nll[0] == pytest.approx(expected(judge.render(prompts[0]), answers[0]), rel=1e-4)
    assert nll[1] == pytest.approx(expected(judge.render(prompts[1]), answers[1]), rel=1e-4)
    assert nll[2] is None
    assert nll[3] == pytest.approx(expected("", answers[3]), rel=1e-4)


def test_matched_excess_on_a_known_curve():
    rng = np.random.default_rng(0)
    n = 200
    nll = [2.0 + rng.normal(0, 0.1, n), 2.5 + rng.normal(0, 0.1, n), 3.0 + rng.normal(0, 0.1, n)]
    curve = [CurvePoint(f"T{i}", 20 * x, x) for i, x in enumerate(nll)]  # a straight curve: metric = 20 x NLL
    model_nll = 2.25 + rng.normal(0, 0.1, n)
    on = matched_excess(curve, CurvePoint("on", 20 * model_nll, model_nll), n_resamples=200)
    assert on.inside and on.excess == pytest.approx(0, abs=1e-9)
    assert on.excess_ci95 == pytest.approx((0, 0), abs=1e-9)
    above = matched_excess(curve, CurvePoint("above", 20 * model_nll + 5, model_nll), n_resamples=200)
    assert above.excess == pytest.approx(5) and above.excess_ci95 == pytest.approx((5, 5))
    assert above.excess_pct == pytest.approx(5 / (20 * model_nll.mean()) * 100)
    noise = rng.normal(0, 3, n)
    noisy = matched_excess(curve, CurvePoint("noisy", 20 * model_nll + 5 + noise, model_nll))
    assert noisy.excess == pytest.approx(5 + noise.mean())
    width = noisy.excess_ci95[1] - noisy.excess_ci95[0]  # about 2 x 1.96 x the noise's standard error
    assert width == pytest.approx(2 * 1.96 * noise.std() / np.sqrt(n), rel=0.25)
    past = matched_excess(curve, CurvePoint("past", np.full(n, 70.0), np.full(n, 3.5)), n_resamples=50)
    assert not past.inside and past.excess == pytest.approx(0, abs=0.5)  # the curve extended linearly
    with pytest.raises(ValueError, match="same prompts"):
        matched_excess(curve, CurvePoint("short", model_nll[:10], model_nll[:10]))


def test_answers_share_random_numbers_and_resume(tiny_path, tmp_path):
    prompts = [[{"role": "user", "content": p}] for p in ("hello", "what is rain", "tell a story")]
    decoding = Decoding(top_p=1.0, temperature=1.0, max_new_tokens=6)
    first = sample_answers(tiny_path, prompts, decoding, samples=2, seed=7)
    again = sample_answers(tiny_path, prompts, decoding, samples=2, seed=7, batch_size=2)
    assert first.texts == again.texts  # the same streams, whatever the batching
    other = sample_answers(tiny_path, prompts, decoding, samples=2, seed=8)
    assert other.texts != first.texts
    first.save(tmp_path / "a.json")
    assert Answers.load(tmp_path / "a.json") == first
    scores = score_answers(first, prompts, {"chars": lambda ps, texts: [len(t) or None for t in texts]})
    assert set(scores) == {"tokens", "capped", "chars"} and scores["tokens"].shape == (3,)
    assert scores["tokens"][0] == pytest.approx(np.mean(first.tokens[0]))
