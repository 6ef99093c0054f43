"""One optimizer step of the main job's training, with activation (gradient) checkpointing off against on (TRL's
default), interleaved `--repeats` times after one untimed step of each.

The batch is shaped like the main job's: `--batch` built-in train instructions rendered with SmolLM2-135M-Instruct's
chat template, each followed by `--completion-tokens` answer tokens (its winners average about 115 of a 128 cap), the
loss on the answer tokens only; forward, backward and an AdamW step, fp32 on the CPU. Figures are seconds per step.

    python benchmarks/bench_checkpointing.py
    python benchmarks/bench_checkpointing.py --smoke     # the toy model (CI)
"""

from __future__ import annotations

import argparse
import statistics
from types import SimpleNamespace

import torch
from common import interleaved, machine, quiet, save

PATHS = ("checkpointing on (TRL's default, before)", "checkpointing off")


def batch(tok, prompts: list[list[int]], completion_tokens: int) -> dict[str, torch.Tensor]:
    """Prompt ids, then random answer ids; right-padded, labels on the answers only."""
    g = torch.Generator().manual_seed(0)
    rows = [p + torch.randint(0, len(tok), (completion_tokens,), generator=g).tolist() for p in prompts]
    width = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = ids.masked_fill(mask == 0, -100)
    for i, p in enumerate(prompts):
        labels[i, : len(p)] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train_step(model, optimizer, inputs: dict[str, torch.Tensor]) -> None:
    """Forward, backward and an optimizer step."""
    model(**inputs).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--completion-tokens", type=int, default=115)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None)
    a = parser.parse_args(argv)
    quiet()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ail_trainer import compat
    from ail_trainer.builtin import builtin_model_path
    from ail_trainer.generation import render_prompts
    from ail_trainer.prompts import as_chat, load_instructions

    if a.smoke:
        a.batch, a.completion_tokens, a.repeats = 2, 8, 1
    model_name = "builtin:tiny-chat" if a.smoke else "builtin:smollm2-135m-instruct"
    path = builtin_model_path(model_name)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).train()
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    prompts = render_prompts([as_chat(r["prompt"]) for r in load_instructions("train")[: a.batch]], tok, True)
    inputs = batch(tok, prompts, a.completion_tokens)
    off = SimpleNamespace(**{f"{compat.CHECKPOINTING_ARG}_kwargs": None})

    def step(checkpointing: bool) -> None:
        if checkpointing:
            compat.checkpointing_on(model, off)
        else:
            compat.checkpointing_off(model)
        train_step(model, optimizer, inputs)

    seconds = interleaved({PATHS[0]: lambda: step(True), PATHS[1]: lambda: step(False)}, a.repeats)
    median = {name: statistics.median(v) for name, v in seconds.items()}
    result = {"model": model_name, "batch": a.batch, "tokens_per_row": inputs["input_ids"].shape[1],
              "seconds": seconds, "median_s": median, "speedup": median[PATHS[0]] / median[PATHS[1]]}
    print(machine())
    print("\n".join(f"{name}: {s:.2f} s a step" for name, s in median.items())
          + f"\nspeedup {result['speedup']:.2f}x ({a.batch} rows of {result['tokens_per_row']} tokens)")
    save("checkpointing", result, a.output)
    return result


if __name__ == "__main__":
    main()
