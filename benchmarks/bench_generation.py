"""Candidate generation: the trainer's path against raw `model.generate` and TRL GRPOTrainer, prefill sharing, scaling.

    python benchmarks/bench_generation.py [--smoke]

Every side samples the same prompts, k, top_p 0.9 / temperature 1.0 and exactly `--new-tokens` tokens per sample
(min_new_tokens = max_new_tokens), in this process, best of `--repeats`; figures are completion tokens per second.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from common import best_of, load, model_path, prompts, quiet, save

from ail_trainer.generation import SamplingSettings, build_generation_config


def raw_generate(model, tok, texts, k, new_tokens, batch):
    settings = SamplingSettings(new_tokens, top_p=0.9, temperature=1.0,
                                generation_kwargs={"min_new_tokens": new_tokens})
    config = build_generation_config(settings, model, tok)
    for start in range(0, len(texts), batch):
        enc = tok(texts[start : start + batch], padding=True, padding_side="left", return_tensors="pt")
        with torch.no_grad():
            model.generate(**enc, generation_config=config, num_return_sequences=k)


def policy_candidates(trainer, texts):
    """One round's policy generation for `texts`, through the trainer's own policy source."""
    policy = next(s for s in trainer.sources if s.name == "policy")
    return policy.candidates(0, list(range(len(texts))), texts)


def ai_trainer(path, texts, k, new_tokens, batch, share_prefill=True):
    from datasets import Dataset

    from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer

    model, tok = load(path)
    args = ActiveInheritanceConfig(
        tempfile.mkdtemp(), num_candidates=k, max_completion_length=new_tokens, max_prompt_length=None,
        generation_batch_size=batch, generation_kwargs={"min_new_tokens": new_tokens}, share_prefill=share_prefill,
        report_to=[], disable_tqdm=True, save_candidate_records=False)
    return ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": texts}),
                                    processing_class=tok, reward_funcs=["length"])


def grpo_trainer(path, k, new_tokens):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tok = load(path)
    args = GRPOConfig(tempfile.mkdtemp(), num_generations=k, per_device_train_batch_size=k,
                      max_completion_length=new_tokens, temperature=1.0, top_p=0.9, bf16=False, report_to=[],
                      generation_kwargs={"min_new_tokens": new_tokens}, disable_tqdm=True)
    return GRPOTrainer(model, reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=args,
                       train_dataset=Dataset.from_dict({"prompt": ["x"] * k}), processing_class=tok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    quiet()
    if args.smoke:
        args.prompts, args.k, args.new_tokens, args.repeats = 4, 2, 4, 1
    path = model_path(args.smoke)
    model, tok = load(path)
    model.eval()
    texts = prompts(args.prompts)
    k, T = args.k, args.new_tokens
    tokens = args.prompts * k * T
    rate = lambda seconds, n=tokens: n / seconds
    result: dict = {"prompts": args.prompts, "k": k, "new_tokens": T}

    # 1. raw generate at its best batch size (prompts per call)
    batches = [b for b in (4, 8, 16, 32) if b <= args.prompts] or [args.prompts]
    raw = {b: rate(best_of(lambda b=b: raw_generate(model, tok, texts, k, T, b), args.repeats)) for b in batches}
    best = max(raw, key=raw.get)
    result["raw_generate_tokens_per_s"] = raw
    result["best_batch"] = best

    trainer = ai_trainer(path, texts, k, T, best)
    ours = rate(best_of(lambda: policy_candidates(trainer, texts), args.repeats))
    grpo = grpo_trainer(path, k, T)
    repeated = [p for p in texts for _ in range(k)]
    grpo_rate = rate(best_of(
        lambda: [grpo._generate(repeated[i : i + best * k]) for i in range(0, len(repeated), best * k)],
        args.repeats))
    result.update(ai_trainer_tokens_per_s=ours, grpo_tokens_per_s=grpo_rate,
                  ratio_vs_raw_best=ours / raw[best], ratio_vs_grpo=ours / grpo_rate)

    # 2. prefill sharing against repeating the prompt, short and ~250-token prompts
    prefill = {}
    for label, long in (("short prompts", False), ("long prompts", True)):
        ptexts = prompts(args.prompts, long=long)
        shared = ai_trainer(path, ptexts, k, T, best, share_prefill=True)
        plain = ai_trainer(path, ptexts, k, T, best, share_prefill=False)
        t_shared = best_of(lambda s=shared, p=ptexts: policy_candidates(s, p), args.repeats)
        t_plain = best_of(lambda s=plain, p=ptexts: policy_candidates(s, p), args.repeats)
        prompt_tokens = sum(len(tok(p)["input_ids"]) for p in ptexts) / len(ptexts)
        prefill[label] = {"prompt_tokens": prompt_tokens, "shared_s": t_shared, "repeated_s": t_plain,
                          "speedup": t_plain / t_shared}
    result["prefill_sharing"] = prefill

    # 3. scaling: seconds per generated token as k and the number of prompts grow
    scaling = {"k": {}, "prompts": {}}
    for kk in (1, 2, 4, 8) if not args.smoke else (1, 2):
        t = ai_trainer(path, texts, kk, T, best)
        scaling["k"][kk] = best_of(lambda t=t: policy_candidates(t, texts), 1) / (args.prompts * kk * T) * 1e3
    for n in (32, 64, 128) if not args.smoke else (2, 4):
        ptexts = prompts(n)
        t = ai_trainer(path, ptexts, k, T, best)
        scaling["prompts"][n] = best_of(lambda t=t, p=ptexts: policy_candidates(t, p), 1) / (n * k * T) * 1e3
    result["ms_per_token"] = scaling

    print(f"Generation: {args.prompts} prompts x k={k} x {T} tokens (14M Llama, fp32 CPU)")
    print(f"{'side':<38}{'tokens/s':>12}")
    for b, r in raw.items():
        print(f"{'raw model.generate, batch ' + str(b):<38}{r:>12,.0f}")
    print(f"{'ActiveInheritanceTrainer, batch ' + str(best):<38}{ours:>12,.0f}")
    print(f"{'GRPOTrainer._generate, same batch':<38}{grpo_rate:>12,.0f}")
    print(f"ratio vs best raw generate: {ours / raw[best]:.2f}   ratio vs GRPOTrainer: {ours / grpo_rate:.2f}")
    for label, p in prefill.items():
        print(f"prefill sharing, {label} (~{p['prompt_tokens']:.0f} tokens): {p['speedup']:.2f}x vs repeated prompts")
    print("ms per generated token by k:", {kk: round(v, 3) for kk, v in scaling["k"].items()})
    print("ms per generated token by prompts:", {n: round(v, 3) for n, v in scaling["prompts"].items()})
    print("results:", save("generation", result, args.output))


if __name__ == "__main__":
    main()
