"""The main job's two sampling passes, each against the form it replaced, on SmolLM2-135M-Instruct (interleaved
`--repeats` times after a warm-up):

1. **The draw.** One decoding step's draw from the whole softmax (top_p 1.0, the main job's candidates):
   `torch.multinomial` over the softmax (before) against `sampling.draw`'s inverse CDF, on the model's own next-token
   logits for `--rows` samples (a candidate batch: 16 prompts × 8). Figures are milliseconds per step.
2. **Held-out batching.** The held-out report's pass (84 test-split instructions × 2 samples, 128 tokens, common
   random numbers) at `generation_batch_size` prompts a batch (before) against `report.held_out_batch_size` (as many
   samples a batch as a candidate batch). Figures are completion tokens per second.

    python benchmarks/bench_main_sampling.py
    python benchmarks/bench_main_sampling.py --smoke     # the toy model, a few prompts (CI)
"""

from __future__ import annotations

import argparse
import statistics
from types import SimpleNamespace

import torch
from common import interleaved, machine, quiet, save


def bench_draw(model, tok, ids: list[list[int]], rows: int, steps: int, repeats: int) -> dict:
    from ail_trainer.sampling import draw

    chunk = [ids[i % len(ids)] for i in range(rows)]
    width = max(map(len, chunk))
    input_ids = torch.tensor([[tok.eos_token_id] * (width - len(p)) + p for p in chunk])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
    with torch.no_grad():
        scores = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1).logits[:, -1].float()
    paths = {"multinomial over the softmax (before)": lambda: [torch.multinomial(torch.softmax(scores, -1), 1)
                                                               for _ in range(steps)],
             "inverse CDF (sampling.draw)": lambda: [draw(scores, None, None, None) for _ in range(steps)]}
    ms = {name: 1000 * statistics.median(v) / steps for name, v in interleaved(paths, repeats).items()}
    before, after = ms.values()
    return {"rows": rows, "vocab": scores.shape[1], "ms_per_step": ms, "speedup": before / after}


def bench_held_out(model, tok, ids: list[list[int]], a) -> dict:
    from ail_trainer.generation import SamplingSettings, build_generation_config, generate
    from ail_trainer.report import held_out_batch_size

    config = build_generation_config(SamplingSettings(a.max_new_tokens, temperature=1.0, top_p=1.0), model, tok)
    batches = {"generation_batch_size (before)": a.generation_batch_size,
               "held_out_batch_size": held_out_batch_size(SimpleNamespace(
                   generation_batch_size=a.generation_batch_size, num_candidates=a.num_candidates), a.samples)}
    answers: dict[str, list[list[int]]] = {}

    def run(name: str) -> None:
        out = generate(model, tok, ids, a.samples, config, batches[name], show_progress=False, noise_seed=1234)
        answers[name] = [g.ids for row in out for g in row]

    seconds = interleaved({name: (lambda n=name: run(n)) for name in batches}, a.repeats)
    runs = {name: {"batch_prompts": batches[name], "tokens": sum(map(len, answers[name])),
                   "tokens_per_s": sum(map(len, answers[name])) / statistics.median(seconds[name])}
            for name in batches}
    before, after = answers.values()
    return {"prompts": len(ids), "samples": a.samples, "max_new_tokens": a.max_new_tokens, "runs": runs,
            "speedup": runs["held_out_batch_size"]["tokens_per_s"]
            / runs["generation_batch_size (before)"]["tokens_per_s"],
            # common random numbers make answers independent of batching up to float rounding, which can flip a
            # token near a CDF boundary in a differently shaped batch
            "identical_answers": sum(x == y for x, y in zip(before, after)) / len(before)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--prompts", type=int, default=84)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--generation-batch-size", type=int, default=16)
    parser.add_argument("--num-candidates", type=int, default=8)
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--draw-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=None)
    a = parser.parse_args(argv)
    quiet()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ail_trainer.builtin import builtin_model_path
    from ail_trainer.generation import render_prompts
    from ail_trainer.prompts import as_chat, load_instructions

    if a.smoke:
        a.prompts, a.max_new_tokens, a.repeats, a.draw_steps = 6, 8, 1, 2
    model_name = "builtin:tiny-chat" if a.smoke else "builtin:smollm2-135m-instruct"
    path = builtin_model_path(model_name)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = render_prompts([as_chat(r["prompt"]) for r in load_instructions("test")[: a.prompts]], tok, True)
    torch.manual_seed(0)
    result = {"model": model_name, "draw": bench_draw(model, tok, ids, a.rows, a.draw_steps, a.repeats),
              "held_out": bench_held_out(model, tok, ids, a)}
    draw_ms, held = result["draw"]["ms_per_step"], result["held_out"]
    print(machine())
    print("\n".join(f"draw, {n}: {v:.1f} ms a step" for n, v in draw_ms.items())
          + f"\ndraw speedup {result['draw']['speedup']:.2f}x over {a.rows} rows")
    print("\n".join(f"held-out, {n}: {r['batch_prompts']} prompts a batch, {r['tokens_per_s']:.1f} tokens/s"
                    for n, r in held["runs"].items())
          + f"\nheld-out speedup {held['speedup']:.2f}x; identical answers {held['identical_answers']:.0%}")
    save("main_sampling", result, a.output)
    return result


if __name__ == "__main__":
    main()
