"""Lexical diversity rewards: MTLD, MATTR and HD-D, on lexicalrichness 0.5.1's tokenization.

All three are computed here and equal lexicalrichness where it defines them (the tests check it). MTLD runs at
the library's speed but without importing it: lexicalrichness loads matplotlib, pandas and scipy, about 180 MB of
resident memory in every training process. MATTR uses sliding counts (O(n), not a set per window) and HD-D a
closed form; both extend to texts shorter than the window / number of draws.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from typing import Any

from .base import Reward

# lexicalrichness lowercases, deletes ASCII digits and the dashes "-", "–", "—", then turns every other
# `string.punctuation` character into a space and splits on whitespace. The character sets are disjoint,
# so one translate table gives the same words.
_TABLE = str.maketrans(
    {
        **{c: " " for c in string.punctuation},
        **{d: None for d in string.digits},
        "-": None,
        "\u2013": None,
        "\u2014": None,
    }
)


def words(text: str) -> list[str]:
    """Tokenize exactly as `lexicalrichness.LexicalRichness(text).wordlist`."""
    return text.lower().translate(_TABLE).split()


def _mtld_pass(tokens: list[str] | reversed, n_words: int, n_terms: int, threshold: float) -> float:
    # A new word never lowers the segment's type-token ratio (a/b <= (a+1)/(b+1) for a <= b), so only a repeated
    # word can take it to the threshold: the ratio is computed there alone, with the same float division.
    terms: set[str] = set()
    count = 0
    factors = 0.0
    for word in tokens:
        count += 1
        if word in terms:
            if len(terms) / count <= threshold:
                count = 0
                terms = set()
                factors += 1
        else:
            terms.add(word)
    if count > 0:
        factors += (1 - len(terms) / count) / (1 - threshold)
    if factors == 0:
        ttr = n_terms / n_words
        factors += 1 if ttr == 1 else (1 - ttr) / (1 - threshold)
    return n_words / factors


def mtld_score(text: str, threshold: float = 0.72) -> float:
    """MTLD (McCarthy and Jarvis 2010), equal to `LexicalRichness(text).mtld(threshold)`; 0.0 for no words."""
    tokens = words(text)
    if not tokens:
        return 0.0
    n_terms = len(set(tokens))
    forward = _mtld_pass(tokens, len(tokens), n_terms, threshold)
    backward = _mtld_pass(reversed(tokens), len(tokens), n_terms, threshold)
    return (forward + backward) / 2


def mattr_score(text: str, window_size: int = 100) -> float:
    """Moving-average type-token ratio over windows of `window_size` words.

    Equal to `LexicalRichness(text).mattr(window_size)` when the text has at least `window_size` words; a
    shorter text scores its plain type-token ratio (lexicalrichness raises there); no words scores 0.0.
    """
    tokens = words(text)
    if not tokens:
        return 0.0
    if len(tokens) < window_size:
        return len(set(tokens)) / len(tokens)
    counts = Counter(tokens[:window_size])
    scores = [len(counts) / window_size]
    for old, new in zip(tokens, tokens[window_size:]):
        counts[new] += 1
        counts[old] -= 1
        if counts[old] == 0:
            del counts[old]
        scores.append(len(counts) / window_size)
    return sum(scores) / len(scores)


def _p_absent(n_words: int, freq: int, draws: int) -> float:
    """Hypergeometric P(0 successes) for `draws` draws from `n_words` with `freq` successes."""
    if n_words - freq < draws:
        return 0.0
    return math.exp(
        math.lgamma(n_words - freq + 1)
        - math.lgamma(n_words - freq - draws + 1)
        - math.lgamma(n_words + 1)
        + math.lgamma(n_words - draws + 1)
    )


def hdd_score(text: str, draws: int = 42) -> float:
    """HD-D (McCarthy and Jarvis 2007), as `LexicalRichness(text).hdd(draws)`.

    A text shorter than `draws` words uses draws = its length (the score is then its type-token ratio,
    where lexicalrichness raises); no words scores 0.0.
    """
    tokens = words(text)
    if not tokens:
        return 0.0
    n = len(tokens)
    draws = min(draws, n)
    return sum((1 - _p_absent(n, freq, draws)) / draws for freq in Counter(tokens).values())


class MTLD(Reward):
    """Measure of Textual Lexical Diversity; higher is more diverse."""

    name = "mtld"

    def __init__(self, threshold: float = 0.72):
        if not 0 < threshold < 1:
            raise ValueError(f"Reward 'mtld': threshold must be in (0, 1), got {threshold}.")
        self.threshold = threshold

    def score(self, texts: list[str], **kwargs: Any) -> list[float]:
        return [mtld_score(t, self.threshold) for t in texts]


class MATTR(Reward):
    """Moving-average type-token ratio; higher is more diverse."""

    name = "mattr"

    def __init__(self, window_size: int = 100):
        if int(window_size) != window_size or window_size < 1:
            raise ValueError(f"Reward 'mattr': window_size must be a positive integer, got {window_size}.")
        self.window_size = int(window_size)

    def score(self, texts: list[str], **kwargs: Any) -> list[float]:
        return [mattr_score(t, self.window_size) for t in texts]


class HDD(Reward):
    """Hypergeometric distribution diversity; higher is more diverse."""

    name = "hdd"

    def __init__(self, draws: int = 42):
        if int(draws) != draws or draws < 1:
            raise ValueError(f"Reward 'hdd': draws must be a positive integer, got {draws}.")
        self.draws = int(draws)

    def score(self, texts: list[str], **kwargs: Any) -> list[float]:
        return [hdd_score(t, self.draws) for t in texts]
