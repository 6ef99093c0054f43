import random
import string
import sys
import urllib.error

import pytest
from lexicalrichness import LexicalRichness

from ail_trainer.rewards import (
    HDD,
    MATTR,
    MTLD,
    REWARDS,
    Length,
    LowToxicity,
    Toxicity,
    check_reward_output,
    hdd_score,
    mattr_score,
    mtld_score,
    resolve_reward,
    resolve_rewards,
    words,
)
from ail_trainer.rewards import toxicity as toxicity_module

VOCAB = ["the", "a", "cat", "Dog", "run-fast", "12abc", "\u201cquoted\u201d", "na\u00efve", "\u6570\u636e",
         "\u2014dash", "it's", "O'Neil", "e-mail", "3.14", ":)", "...", "\u00fcber", "Stra\u00dfe", "\u0130stanbul",
         "\u043f\u0440\u0438\u0432\u0435\u0442", "\u0645\u0631\u062d\u0628\u0627", "x", "y", "z", "well,", "(so)"]


def random_texts(n, seed=0):
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        pool = VOCAB + ["".join(rng.choices(string.ascii_letters, k=rng.randint(1, 6))) for _ in range(20)]
        texts.append(" ".join(rng.choice(pool) for _ in range(rng.randint(1, 250))))
    return texts


def test_mtld_matches_lexicalrichness_exactly():
    texts = random_texts(400)
    for text in texts:
        reference = LexicalRichness(text)
        assert words(text) == reference.wordlist
        expected = reference.mtld(threshold=0.72) if reference.words else 0.0
        assert mtld_score(text) == expected, text


def test_mtld_other_threshold_and_reward_call():
    text = random_texts(1, seed=3)[0]
    assert MTLD(threshold=0.6)(completions=[text]) == [LexicalRichness(text).mtld(threshold=0.6)]


@pytest.mark.parametrize("text", ["", "   ", "!!! ... ---", "123 456", "\u2014\u2013-"])
def test_text_without_words_scores_zero(text):
    assert mtld_score(text) == 0.0
    assert MTLD()(completions=[text]) == [0.0]
    assert mattr_score(text) == 0.0 and hdd_score(text) == 0.0


def test_lexicalrichness_raises_where_we_score_zero():
    with pytest.raises(ZeroDivisionError):
        LexicalRichness("...").mtld()


def test_mattr_and_hdd_match_lexicalrichness_where_defined():
    for text in random_texts(60, seed=1):
        ref = LexicalRichness(text)
        if ref.words >= 50:
            assert mattr_score(text, 50) == pytest.approx(ref.mattr(50), abs=1e-12)
            assert hdd_score(text, 42) == pytest.approx(ref.hdd(42), abs=1e-9)


def test_short_text_fallbacks_are_ttr():
    text = "one two two three"
    assert mattr_score(text, window_size=100) == pytest.approx(3 / 4)
    assert hdd_score(text, draws=42) == pytest.approx(3 / 4)
    assert MATTR(window_size=2)(completions=["a b a b"]) == [pytest.approx(LexicalRichness("a b a b").mattr(2))]
    assert HDD(draws=3)(completions=["a b c d e"]) == [pytest.approx(LexicalRichness("a b c d e").hdd(3))]


def test_diversity_ranks_repetition_below_variety():
    repetitive = "the cat the cat the cat the cat the cat the cat"
    varied = "a quick brown fox jumps over the lazy dog near our quiet river bank"
    for reward in (MTLD(), MATTR(window_size=5), HDD(draws=5)):
        low, high = reward(completions=[repetitive, varied])
        assert high > low, reward


def test_length_units():
    texts = ["one two three", "hi"]
    assert Length(unit="words")(completions=texts) == [3, 1]
    assert Length(unit="chars")(completions=texts) == [13, 2]
    assert Length()(completions=texts, completion_ids=[[1, 2, 3, 4], [5]]) == [4, 1]
    assert Length(unit="words", maximize=False)(completions=texts) == [-3, -1]
    with pytest.raises(ValueError, match="completion_ids"):
        Length()(completions=texts)
    with pytest.raises(ValueError, match="unit"):
        Length(unit="pages")


def test_length_tokens_with_tokenizer(tiny):
    _, tok = tiny
    texts = ["Water falls as rain.", "Hi"]
    expected = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert Length(tokenizer=tok)(completions=texts) == expected


def test_conversational_completions_are_scored_on_their_content():
    messages = [[{"role": "assistant", "content": "one two three"}]]
    assert Length(unit="words")(completions=messages) == [3]


def test_bad_input_names_the_reward():
    with pytest.raises(ValueError, match="'mtld'.*None"):
        MTLD()(completions=["ok", None])
    with pytest.raises(TypeError, match="'length'.*completion 1"):
        Length(unit="words")(completions=["ok", 3])
    with pytest.raises(ValueError, match="'mtld'.*2 prompts but 1 completions"):
        MTLD()(prompts=["a", "b"], completions=["x"])
    with pytest.raises(TypeError, match="'mtld'"):
        MTLD()(completions="not a list")


def test_check_reward_output():
    assert check_reward_output("r", [1, None, 2.5], 3) == [1.0, None, 2.5]
    with pytest.raises(ValueError, match="'r' returned 2 values for 3"):
        check_reward_output("r", [1, 2], 3)
    with pytest.raises(ValueError, match="'r' returned nan"):
        check_reward_output("r", [float("nan")], 1)
    with pytest.raises(TypeError, match="'r' returned 'x'"):
        check_reward_output("r", ["x"], 1)
    with pytest.raises(TypeError, match="list"):
        check_reward_output("r", 1.0, 1)


def test_profanity_backend_ranks_an_insult_above_a_polite_sentence():
    insult, polite = "you are a stupid idiot, shut up", "thank you so much, have a lovely day"
    tox = Toxicity(backend="profanity")(completions=[insult, polite])
    assert tox[0] > tox[1]
    assert all(0 <= t <= 1 for t in tox)
    low = LowToxicity(backend="profanity")(completions=[insult, polite])
    assert low == pytest.approx([1 - t for t in tox])


def test_detoxify_local_checkpoint(detoxify_checkpoint):
    from detoxify import Detoxify

    checkpoint, config_path = detoxify_checkpoint
    texts = ["you are an idiot", "have a lovely day !", "thank you so much .", "stupid"] * 3
    reward = Toxicity(checkpoint=checkpoint, huggingface_config_path=config_path, device="cpu", batch_size=5)
    scores = reward(completions=texts)
    expected = Detoxify(checkpoint=checkpoint, huggingface_config_path=config_path).predict(texts)
    assert set(expected) == {"toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"}
    assert scores == pytest.approx(expected["toxicity"], abs=1e-5)
    insult = Toxicity(checkpoint=checkpoint, huggingface_config_path=config_path, attribute="insult")
    assert insult(completions=texts) == pytest.approx(expected["insult"], abs=1e-5)
    low = LowToxicity(checkpoint=checkpoint, huggingface_config_path=config_path, device="cpu")
    assert low(completions=texts) == pytest.approx([1 - s for s in scores], abs=1e-6)
    # loaded once per process and configuration
    assert len([k for k in toxicity_module._SCORERS if k[2] == checkpoint]) == 1
    with pytest.raises(ValueError, match="no 'sarcasm' head"):
        Toxicity(checkpoint=checkpoint, huggingface_config_path=config_path, attribute="sarcasm")(completions=["x"])


def test_detoxify_offline_error_says_how_to_point_at_a_checkpoint(monkeypatch):
    import torch.hub

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    with pytest.raises(RuntimeError, match="checkpoint.*huggingface_config_path"):
        LowToxicity(model="unbiased", device="cpu")(completions=["hello"])


def test_missing_optional_package_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "profanity_check", None)
    with pytest.raises(ImportError, match="pip install alt-profanity-check"):
        Toxicity(backend="profanity")(completions=["hello"])
    monkeypatch.setitem(sys.modules, "detoxify", None)
    with pytest.raises(ImportError, match="pip install detoxify"):
        Toxicity(checkpoint="/nowhere.ckpt", device="cpu")(completions=["hello"])


def test_registry_names_options_and_paths():
    assert set(REWARDS) == {"mtld", "mattr", "hdd", "length", "toxicity", "low_toxicity"}
    assert isinstance(resolve_reward("mtld"), MTLD)
    reward = resolve_reward({"name": "low_toxicity", "backend": "profanity"})
    assert isinstance(reward, LowToxicity) and reward.backend == "profanity"
    length = resolve_reward("length:unit=words,maximize=false")
    assert length.unit == "words" and length.maximize is False
    assert resolve_reward("mattr:window_size=20").window_size == 20
    imported = resolve_reward("trl.rewards.think_format_reward")
    assert imported.__name__ == "think_format_reward"
    factory = resolve_reward({"name": "ail_trainer.rewards.Length", "unit": "chars"})
    assert factory(completions=["abc"]) == [3]
    fn = lambda completions, **kw: [0.0] * len(completions)
    assert resolve_rewards([fn, "mtld"])[0] is fn
    assert resolve_rewards(None) == []


def test_registry_errors():
    known = "hdd, length, likelihood, low_toxicity, mattr, mtld, toxicity"
    with pytest.raises(ValueError, match=f"Unknown reward 'mtdl'.*{known}"):
        resolve_reward("mtdl")
    with pytest.raises(ValueError, match="Bad options.*length"):
        resolve_reward({"name": "length", "colour": "red"})
    with pytest.raises(ValueError, match="Could not import"):
        resolve_reward("no_such_pkg.reward")
    with pytest.raises(ValueError, match="'name'"):
        resolve_reward({"backend": "profanity"})
    with pytest.raises(ValueError, match="key=value"):
        resolve_reward("length:words")


def test_rewards_pickle():
    import pickle

    for reward in (MTLD(), MATTR(), HDD(), Length(), LowToxicity(backend="profanity")):
        clone = pickle.loads(pickle.dumps(reward))
        assert clone(completions=["a b c"], completion_ids=[[1]]) == reward(completions=["a b c"], completion_ids=[[1]])
