"""One epoch of ActiveInheritanceTrainer against the do-it-yourself pipeline on the same data.

    python benchmarks/bench_e2e.py [--smoke]

DIY: `model.generate` (num_return_sequences, same batch and sampling), the same rewards and argmax selection, then
`SFTTrainer` for one epoch on the winners. Both start from the same saved weights; the ratio is DIY / ours.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from common import load, model_path, prompts, quiet, save


def diy(path, texts, k, new_tokens, batch, gen_batch):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from ail_trainer.generation import SamplingSettings, build_generation_config
    from ail_trainer.rewards import MTLD, Length

    model, tok = load(path)
    model.eval()
    config = build_generation_config(SamplingSettings(new_tokens, top_p=0.9, temperature=1.0), model, tok)
    winners = []
    for start in range(0, len(texts), gen_batch):
        chunk = texts[start : start + gen_batch]
        enc = tok(chunk, padding=True, padding_side="left", return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, generation_config=config, num_return_sequences=k)
        ids = out[:, enc["input_ids"].shape[1] :]
        completions = tok.batch_decode(ids, skip_special_tokens=True)
        lengths = [len([t for t in row if t not in (tok.pad_token_id, tok.eos_token_id)]) for row in ids.tolist()]
        scores = np.array(MTLD()(completions=completions)) + np.array(
            Length()(completions=completions, completion_ids=[[0] * n for n in lengths]))
        for i, prompt in enumerate(chunk):
            best = int(np.argmax(scores[i * k : (i + 1) * k]))
            winners.append({"prompt": prompt, "completion": completions[i * k + best]})
    model.train()
    args = SFTConfig(tempfile.mkdtemp(), num_train_epochs=1, per_device_train_batch_size=batch, learning_rate=1e-4,
                     bf16=False, report_to=[], save_strategy="no", disable_tqdm=True, logging_steps=1000)
    SFTTrainer(model, args, train_dataset=Dataset.from_list(winners), processing_class=tok).train()


def ours(path, texts, k, new_tokens, batch, gen_batch):
    from datasets import Dataset

    from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer

    model, tok = load(path)
    args = ActiveInheritanceConfig(
        tempfile.mkdtemp(), num_candidates=k, max_completion_length=new_tokens, generation_batch_size=gen_batch,
        per_device_train_batch_size=batch, num_train_epochs=1, learning_rate=1e-4, report_to=[], save_strategy="no",
        disable_tqdm=True, logging_steps=1000)
    ActiveInheritanceTrainer(model, args, train_dataset=Dataset.from_dict({"prompt": texts}), processing_class=tok,
                             reward_funcs=["mtld", "length"]).train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--gen-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    quiet()
    if args.smoke:
        args.prompts, args.k, args.new_tokens, args.batch, args.gen_batch, args.repeats = 8, 2, 4, 4, 4, 1
    path = model_path(args.smoke)
    texts = prompts(args.prompts)
    times = {"ActiveInheritanceTrainer": [], "DIY generate + score + SFTTrainer": []}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both sides
        for name, fn in (("ActiveInheritanceTrainer", ours), ("DIY generate + score + SFTTrainer", diy)):
            torch.manual_seed(0)
            start = time.perf_counter()
            fn(path, texts, args.k, args.new_tokens, args.batch, args.gen_batch)
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    ratio = best["DIY generate + score + SFTTrainer"] / best["ActiveInheritanceTrainer"]
    print(f"One epoch, {args.prompts} prompts, k={args.k}, up to {args.new_tokens} new tokens "
          f"(best of {args.repeats}, includes model loading on both sides)")
    for name, seconds in best.items():
        print(f"  {name:<38}{seconds:>8.2f} s")
    print(f"DIY / ActiveInheritanceTrainer time ratio: {ratio:.2f} (above 1: ours is faster)")
    print("results:", save("e2e", {"seconds": times, "best": best, "diy_over_ours": ratio, **vars(args)}, args.output))


if __name__ == "__main__":
    main()
