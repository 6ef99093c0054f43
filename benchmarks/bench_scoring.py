"""Scoring throughput of every built-in reward, and MTLD against lexicalrichness on the same texts.

    python benchmarks/bench_scoring.py [--texts 2000] [--words 150] [--detoxify-checkpoint CKPT --detoxify-config DIR]

Both sides of each ratio run in this process on the same texts, best of `--repeats` runs. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import string
from pathlib import Path

from common import best_of
from lexicalrichness import LexicalRichness

from ail_trainer.rewards import HDD, MATTR, MTLD, Length, LowToxicity


def make_texts(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(3000)]
    punct = [",", ".", ";", "!", "?", "-", "\u2014", "'s", "(", ")", "2024"]
    return [" ".join(rng.choice(vocab) + (rng.choice(punct) if rng.random() < 0.15 else "")
                     for _ in range(rng.randint(words // 2, words * 3 // 2))) for _ in range(n)]


def lexicalrichness_mtld(texts):
    out = []
    for t in texts:
        lex = LexicalRichness(t)
        out.append(lex.mtld() if lex.words else 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--words", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detoxify-checkpoint")
    parser.add_argument("--detoxify-config")
    parser.add_argument("--output", default="benchmarks/results/scoring.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.texts, args.words, args.repeats = 50, 120, 1
    texts = make_texts(args.texts, args.words)
    ids = [[0] * len(t.split()) for t in texts]

    mtld = MTLD()
    assert mtld(completions=texts) == lexicalrichness_mtld(texts), "MTLD disagrees with lexicalrichness"
    rewards = {"mtld": mtld, "mattr": MATTR(window_size=50), "hdd": HDD(draws=42), "length (tokens)": Length(),
               "length (words)": Length(unit="words"), "low_toxicity (profanity)": LowToxicity(backend="profanity")}
    if args.detoxify_checkpoint:
        rewards["low_toxicity (detoxify)"] = LowToxicity(checkpoint=args.detoxify_checkpoint,
                                                         huggingface_config_path=args.detoxify_config)
    rows = {}
    reference = best_of(lambda: lexicalrichness_mtld(texts), args.repeats)
    rows["lexicalrichness mtld (reference)"] = args.texts / reference
    rows["lexicalrichness mattr(50)"] = args.texts / best_of(
        lambda: [LexicalRichness(t).mattr(50) for t in texts], args.repeats)
    rows["lexicalrichness hdd(42)"] = args.texts / best_of(
        lambda: [LexicalRichness(t).hdd(42) for t in texts], args.repeats)
    for name, reward in rewards.items():
        reward(completions=texts[:2], completion_ids=ids[:2])  # load models outside the timing
        rows[name] = args.texts / best_of(lambda r=reward: r(completions=texts, completion_ids=ids), args.repeats)

    cpu = platform.processor() or platform.machine()
    print(f"{args.texts} texts of ~{args.words} words, best of {args.repeats}, {cpu}")
    print(f"{'reward':<34}{'texts/s':>14}")
    for name, rate in rows.items():
        print(f"{name:<34}{rate:>14,.0f}")
    ratios = {name: rows[name] / rows[ref] for name, ref in [
        ("mtld", "lexicalrichness mtld (reference)"), ("mattr", "lexicalrichness mattr(50)"),
        ("hdd", "lexicalrichness hdd(42)")]}
    print()
    for name, ratio in ratios.items():
        print(f"{name} / lexicalrichness throughput ratio: {ratio:.2f}x")
    result = {"texts": args.texts, "words": args.words, "texts_per_second": rows,
              "ratio_vs_lexicalrichness": ratios, "machine": platform.platform()}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
