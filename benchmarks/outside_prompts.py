"""A trained model against its base on outside prompts, under the pre-registered protocol
(`benchmarks/protocol/PROTOCOL.md`): both decodings, the fluency judge beside MTLD, and the base model's
temperature curve, with the trained model placed against it at matched judge NLL.

    accelerate launch recipes/train.py --output_dir outputs/main-job          # the main job, seed 42
    python benchmarks/outside_prompts.py --trained outputs/main-job --split dev
    python benchmarks/outside_prompts.py --trained outputs/main-job --split test   # logged in the ledger
    python benchmarks/outside_prompts.py --smoke                               # the toy model (CI)

Every answer set and its scores are written as they finish and kept, so a killed run resumes: the trained model's
under `<output>/`, the base model's temperature curve under `benchmarks/results/outside/base-<set>-<split>/`,
shared by every trained model measured on the same prompts and settings. A run on a test split appends one line to
`benchmarks/protocol/ledger.jsonl`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
from pathlib import Path

import numpy as np

from ail_trainer.builtin import builtin_model_path, is_builtin
from ail_trainer.evaluation import FluencyJudge
from ail_trainer.evaluation.curve import CurvePoint, matched_excess
from ail_trainer.evaluation.measure import Answers, Decoding, sample_answers, score_answers, selector_scorer
from ail_trainer.prompt_sets import load_prompt_set
from ail_trainer.report import percent_change

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "benchmarks" / "protocol" / "ledger.jsonl"
TOP_PS = (1.0, 0.9)
TEMPERATURES = (1.0, 1.05, 1.1, 1.2)
PROTOCOL_VERSION = 2
METRICS = ("mtld", "judge_nll", "tokens", "capped")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trained", help="The trained model's folder.")
    p.add_argument("--base", default="builtin:smollm2-135m-instruct")
    p.add_argument("--judge", default="builtin:gemma3-270m", help="The fluency judge's model.")
    p.add_argument("--set", default="builtin:alpaca-eval")
    p.add_argument("--split", default="dev", choices=["dev", "test"])
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--temperatures", type=float, nargs="+", default=list(TEMPERATURES))
    p.add_argument("--top-ps", type=float, nargs="+", default=list(TOP_PS))
    p.add_argument("--output", help="Results folder (default benchmarks/results/outside/<trained name>-<split>).")
    p.add_argument("--recipe", default="", help="What trained the model, for the ledger.")
    p.add_argument("--smoke", action="store_true", help="The toy model as base, trained model and judge.")
    args = p.parse_args(argv)
    if args.smoke:
        args.trained = args.base = args.judge = "builtin:tiny-chat"
        args.prompts, args.max_new_tokens, args.temperatures = 4, 8, [1.0, 1.2]
        args.output = args.output or str(ROOT / "benchmarks" / ".cache" / "outside-smoke")
    if not args.trained:
        p.error("--trained is required (the trained model's folder), or --smoke.")
    return args


def resolve(name: str) -> str:
    return builtin_model_path(name) if is_builtin(name) else name


def conditions(args: argparse.Namespace, out: Path) -> list[tuple[str, str, Decoding, Path]]:
    """(label, model, decoding, folder): the base model at every temperature (in the shared base folder) and the
    trained model at 1.0 (in `out`), per top_p."""
    slug = lambda name: name.replace("builtin:", "").replace("/", "_")
    base_dir = out.parent / (f"base-{slug(args.base)}-{slug(args.set)}-{args.split}-n{args.prompts}x{args.samples}"
                             f"-cap{args.max_new_tokens}-seed{args.seed}-judge-{slug(args.judge)}")
    found = []
    for top_p in args.top_ps:
        found.append((f"trained-T1-p{top_p:g}", args.trained, Decoding(top_p, 1.0, args.max_new_tokens), out))
        for t in args.temperatures:
            found.append((f"base-T{t:g}-p{top_p:g}", args.base, Decoding(top_p, t, args.max_new_tokens), base_dir))
    return found


def run(args: argparse.Namespace) -> dict:
    out = Path(args.output or ROOT / "benchmarks" / "results" / "outside" / f"{Path(args.trained).name}-{args.split}")
    rows = load_prompt_set(args.set, args.split, args.prompts)
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    judge = None
    scores: dict[str, dict[str, np.ndarray]] = {}
    for label, model, decoding, folder in conditions(args, out):
        answers_path, scores_path = folder / "answers" / f"{label}.json", folder / "scores" / f"{label}.json"
        if not answers_path.exists():
            sample_answers(resolve(model), prompts, decoding, args.samples, args.seed).save(answers_path)
        if not scores_path.exists():
            judge = judge or FluencyJudge(args.judge)
            values = score_answers(Answers.load(answers_path), prompts,
                                   {"mtld": selector_scorer("mtld"), "judge_nll": judge})
            scores_path.parent.mkdir(parents=True, exist_ok=True)
            scores_path.write_text(json.dumps({k: v.tolist() for k, v in values.items()}))
        scores[label] = {k: np.array(v, dtype=float) for k, v in json.loads(scores_path.read_text()).items()}
        print(f"{label}: " + ", ".join(f"{k} {np.nanmean(v):.4g}" for k, v in scores[label].items()), flush=True)
    summary = summarize(args, scores)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    if args.split == "test" and not args.smoke:
        log_look(args, out)
    return summary


def summarize(args: argparse.Namespace, scores: dict[str, dict[str, np.ndarray]]) -> dict:
    """Per decoding: every condition's means and % change against the base model at temperature 1.0 (paired
    bootstrap interval over prompts), and the trained model against the base model's temperature curve."""
    decodings = {}
    for top_p in args.top_ps:
        base = scores[f"base-T1-p{top_p:g}"]
        rows = {}
        for label in [f"base-T{t:g}-p{top_p:g}" for t in args.temperatures] + [f"trained-T1-p{top_p:g}"]:
            row = {}
            for metric in METRICS:
                b, a = base[metric], scores[label][metric]
                keep = np.isfinite(b) & np.isfinite(a)
                change, low, high = percent_change(b[keep], a[keep])
                row[metric] = {"mean": float(np.mean(a[keep])), "change_pct": change, "ci95_pct": [low, high]}
            rows[label] = row
        curve = [CurvePoint(f"T{t:g}", scores[f"base-T{t:g}-p{top_p:g}"]["mtld"],
                            scores[f"base-T{t:g}-p{top_p:g}"]["judge_nll"]) for t in args.temperatures]
        trained = scores[f"trained-T1-p{top_p:g}"]
        matched = matched_excess(curve, CurvePoint("trained", trained["mtld"], trained["judge_nll"]))
        decodings[f"top_p {top_p:g}"] = {"rows": rows, "matched": matched.__dict__}
    return {"set": args.set, "split": args.split, "prompts": args.prompts, "samples": args.samples,
            "max_new_tokens": args.max_new_tokens, "seed": args.seed, "base": args.base, "trained": args.trained,
            "judge": args.judge, "temperatures": args.temperatures, "decodings": decodings}


def markdown(summary: dict) -> str:
    lines = [f"{summary['set']} {summary['split']}: {summary['prompts']} prompts x {summary['samples']} samples, up to "
             f"{summary['max_new_tokens']} tokens, common random numbers; change against the base model at "
             "temperature 1.0, 95% paired bootstrap interval over prompts; judge NLL under "
             f"{summary['judge']} (+ = less fluent)", ""]
    pct = lambda m: f"{m['change_pct']:+.1f}% [{m['ci95_pct'][0]:+.1f}, {m['ci95_pct'][1]:+.1f}]"
    for name, block in summary["decodings"].items():
        lines += [f"**{name}**", "", "| model | MTLD | change | judge NLL | change | tokens | change |",
                  "|---|---|---|---|---|---|---|"]
        for label, row in block["rows"].items():
            lines.append(f"| {label.rsplit('-p', 1)[0]} | {row['mtld']['mean']:.1f} | {pct(row['mtld'])} | "
                         f"{row['judge_nll']['mean']:.3f} | {pct(row['judge_nll'])} | {row['tokens']['mean']:.1f} | "
                         f"{pct(row['tokens'])} |")
        m = block["matched"]
        lines += ["", f"Trained against the temperature curve at its judge NLL {m['model_nll']:.3f}: MTLD "
                  f"{m['model_metric']:.1f} against {m['curve_metric']:.1f}, {m['excess']:+.1f} "
                  f"[{m['excess_ci95'][0]:+.1f}, {m['excess_ci95'][1]:+.1f}] "
                  f"({m['excess_pct']:+.1f}% [{m['excess_pct_ci95'][0]:+.1f}, {m['excess_pct_ci95'][1]:+.1f}])"
                  + ("" if m["inside"] else ", outside the curve's range (extended)"), ""]
    return "\n".join(lines)


def log_look(args: argparse.Namespace, out: Path) -> None:
    """One ledger line per results folder, the first time its test-split summary is made."""
    lines = [json.loads(line) for line in LEDGER.read_text().splitlines() if line.strip()]
    where = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    if any(entry.get("results") == where for entry in lines):
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    entry = {"look": len(lines) + 1, "date": datetime.date.today().isoformat(), "commit": commit.strip(),
             "test_split": f"{args.set} {args.split} ({args.prompts} x {args.samples})", "recipe": args.recipe,
             "protocol": PROTOCOL_VERSION, "results": where}
    with open(LEDGER, "a") as f:
        f.write(json.dumps(entry) + "\n")


if __name__ == "__main__":
    run(parse())
