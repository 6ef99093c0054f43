"""The profiling protocols. Per-item results are appended to a cache file as they complete, so a rerun resumes."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..generation import SamplingSettings, build_generation_config, generate, render_prompts
from ..rewards import Toxicity
from ..rewards.lexical import mattr_score, mtld_score
from . import metrics

PROMPT_TEMPLATE = "### Question: {prompt}\n ### Answer: "  # the paper's template for base models
BBQ_TEMPLATE = "### Context: {context}\n ### Question: {question}\n ### Answer: "


class ItemCache:
    """JSON lines of finished items, keyed by id; `run` processes only the missing ones, chunk by chunk."""

    def __init__(self, path: Path | None):
        self.path = path
        self.done: dict[str, dict] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.done[row["id"]] = row

    def run(self, rows: list[dict], fn: Callable[[list[dict]], list[dict]], chunk: int, desc: str) -> list[dict]:
        todo = [r for r in rows if r["id"] not in self.done]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        for start in tqdm(range(0, len(todo), chunk), desc=desc, disable=not todo):
            results = fn(todo[start : start + chunk])
            for row, result in zip(todo[start : start + chunk], results):
                self.done[row["id"]] = {"id": row["id"], **result}
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as f:
                    f.writelines(json.dumps(self.done[r["id"]], ensure_ascii=False) + "\n"
                                 for r in todo[start : start + chunk])
        return [self.done[r["id"]] for r in rows]


def _prompt_ids(tok, prompts: list[str], template: str | None) -> list[list[int]]:
    if template is None and tok.chat_template is not None:
        return render_prompts([[{"role": "user", "content": p}] for p in prompts], tok, True)
    return render_prompts([(template or PROMPT_TEMPLATE).format(prompt=p) for p in prompts], tok, False)


def text_features(text: str, num_tokens: int | None = None) -> dict[str, float]:
    out = {"words": len(text.split()), "mtld": mtld_score(text), "mattr": mattr_score(text, 50),
           "gunning_fog": metrics.gunning_fog(text)}
    if num_tokens is not None:
        out["tokens"] = num_tokens
    return out


def summarize(results: Iterable[dict], keys: Iterable[str]) -> dict[str, dict[str, float]]:
    results = list(results)
    return {k: metrics.summary([r[k] for r in results]) for k in keys}


def textual(model, tok, rows, cache: ItemCache, max_new_tokens=256, batch_size=16, template=None,
            fluency: Callable | None = None, fluency_cache: ItemCache | None = None) -> dict:
    """Greedy decoding, one completion per prompt: length, MTLD, MATTR(50), Gunning fog (mean, std, n), and with
    `fluency` (a judge: prompts, texts -> NLL) each answer's judge NLL."""
    config = build_generation_config(SamplingSettings(max_new_tokens, do_sample=False), model, tok)

    def fn(chunk):
        out = generate(model, tok, _prompt_ids(tok, [r["prompt"] for r in chunk], template), 1, config,
                       batch_size, show_progress=False)
        return [{"text": g[0].text, **text_features(g[0].text, len(g[0].ids))} for g in out]

    results = cache.run(rows, fn, batch_size * 4, "textual")
    out = summarize(results, ["tokens", "words", "mtld", "mattr", "gunning_fog"])
    if fluency is not None:
        out["judge_nll"] = judge_fluency(rows, results, fluency, fluency_cache or ItemCache(None))
    return out


def judge_fluency(rows: list[dict], results: list[dict], judge: Callable, cache: ItemCache) -> dict[str, float]:
    """The fluency judge's NLL of each stored answer, given its prompt as one user turn (empty answers left out)."""
    texts = {r["id"]: res["text"] for r, res in zip(rows, results)}
    scored = cache.run(rows, lambda chunk: [{"judge_nll": v} for v in judge(
        [[{"role": "user", "content": r["prompt"]}] for r in chunk], [texts[r["id"]] for r in chunk])],
        32, "fluency judge")
    return metrics.summary([r["judge_nll"] for r in scored if r["judge_nll"] is not None])


def textual_of_texts(rows, cache: ItemCache) -> dict:
    results = cache.run(rows, lambda chunk: [text_features(r["text"]) for r in chunk], 256, "texts")
    return summarize(results, ["words", "mtld", "mattr", "gunning_fog"])


def _toxicity_summary(scores: list[list[float]], samples: int) -> dict:
    return {"expected_maximum_toxicity": metrics.expected_maximum_toxicity(scores),
            "toxicity_probability": metrics.toxicity_probability(scores), "n": len(scores), "samples": samples}


def _with_judge(out: dict, results: list[dict], samples: int, judge: Callable | None) -> dict:
    """The judge's EMT and toxicity probability beside the selector's, over the items the judge scored."""
    judged = [r["judge_scores"] for r in results if "judge_scores" in r]
    if judge is not None and judged:
        out["judge"] = {"name": getattr(judge, "name", "judge"), **_toxicity_summary(judged, samples)}
    return out


def toxicity(model, tok, rows, cache: ItemCache, scorer: Toxicity, samples=25, max_new_tokens=32,
             batch_size=8, max_prompt_length=512, seed=0, judge: Callable | None = None) -> dict:
    """n samples per prompt (top_p 0.9, T 1.0): Expected Maximum Toxicity and Toxicity Probability by `scorer`, and
    by `judge` (texts -> toxicity, e.g. `ToxBlockJudge`) beside it when given."""
    config = build_generation_config(SamplingSettings(max_new_tokens, top_p=0.9, temperature=1.0), model, tok)

    def fn(chunk):
        ids = [i[-max_prompt_length:] for i in render_prompts([r["prompt"] for r in chunk], tok, False)]
        torch.manual_seed(seed + int(np.frombuffer(chunk[0]["id"].encode()[:4].ljust(4, b"\0"), np.uint32)[0]))
        out = generate(model, tok, ids, samples, config, batch_size, show_progress=False)
        return [{"scores": scorer(completions=[g.text for g in s]),
                 **({"judge_scores": judge([g.text for g in s])} if judge else {})} for s in out]

    results = cache.run(rows, fn, batch_size, "toxicity")
    return _with_judge(_toxicity_summary([r["scores"] for r in results], samples), results, samples, judge)


def toxicity_of_texts(rows, cache: ItemCache, scorer: Toxicity, judge: Callable | None = None) -> dict:
    def fn(chunk):
        texts = [r["text"] for r in chunk]
        judged = judge(texts) if judge else [None] * len(texts)
        return [{"scores": [s], **({"judge_scores": [j]} if judge else {})}
                for s, j in zip(scorer(completions=texts), judged)]

    results = cache.run(rows, fn, 256, "toxicity")
    return _with_judge(_toxicity_summary([r["scores"] for r in results], 1), results, 1, judge)


@torch.no_grad()
def option_logprobs(model, tok, contexts: list[str], options: list[list[str]],
                    batch_size: int = 16) -> list[list[float]]:
    """Sum of log p(option tokens | context) for every option of every item (lm-eval style)."""
    device = next(model.parameters()).device
    pairs = [(i, c, o) for i, (c, opts) in enumerate(zip(contexts, options)) for o in opts]
    scores: dict[int, list[float]] = defaultdict(list)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    was_training = model.training
    model.eval()
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        seqs, spans = [], []
        for _, context, option in batch:
            ctx = tok(context)["input_ids"]
            full = tok(context + option)["input_ids"]
            cut = next((j for j, (a, b) in enumerate(zip(ctx, full)) if a != b), min(len(ctx), len(full)))
            cut = max(min(cut, len(full) - 1), 1)
            seqs.append(full)
            spans.append((cut, len(full)))
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.tensor(s)
            mask[row, : len(s)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        for row, ((item, _, _), (a, b)) in enumerate(zip(batch, spans)):
            scores[item].append(float(logp[row, a - 1 : b - 1].sum()))
    model.train(was_training)
    return [scores[i] for i in range(len(contexts))]


def calibration(model, tok, rows, cache: ItemCache, batch_size=16) -> dict:
    """Option log-likelihoods, softmax per item: accuracy, 1-bin and 10-bin equal-mass ECE."""
    def fn(chunk):
        lps = option_logprobs(model, tok, [r["context"] for r in chunk], [r["options"] for r in chunk], batch_size)
        return [{"logprobs": lp, "gold": r["gold"]} for lp, r in zip(lps, chunk)]

    results = cache.run(rows, fn, 64, "calibration")
    return metrics.calibration([r["logprobs"] for r in results], [r["gold"] for r in results])


def bias(model, tok, rows, cache: ItemCache, batch_size=16) -> dict[str, Any]:
    """BBQ: the answer is the option with the highest log-likelihood; accuracy and bias per category."""
    def fn(chunk):
        contexts = [BBQ_TEMPLATE.format(context=r["context"], question=r["question"]) for r in chunk]
        lps = option_logprobs(model, tok, contexts, [r["options"] for r in chunk], batch_size)
        return [{"predicted": r["answer_types"][int(np.argmax(lp))], "gold": r["answer_types"][r["gold"]],
                 "category": r["category"], "context_condition": r["context_condition"]}
                for lp, r in zip(lps, chunk)]

    results = cache.run(rows, fn, 64, "bias")
    by_category: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_category[r["category"]].append(r)
    out = {cat: metrics.bbq_bias([r["predicted"] for r in rs], [r["gold"] for r in rs],
                                 [r["context_condition"] for r in rs]) for cat, rs in sorted(by_category.items())}
    out["all"] = metrics.bbq_bias([r["predicted"] for r in results], [r["gold"] for r in results],
                                  [r["context_condition"] for r in results])
    return out
