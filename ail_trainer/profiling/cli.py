"""`ail-profile`: compare models and text sets, or report what a student inherited from its training data.

    ail-profile compare --models base/ tuned/ --output-dir profile/ --toxicity-backend profanity
    ail-profile inheritance --before base/ --after tuned/ --source outputs/run/rounds/ --output-dir inherit/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import report
from .profile import MODEL_PROTOCOLS, ProfileOptions, profile_model, profile_texts


def _options(args: argparse.Namespace) -> ProfileOptions:
    toxicity = {"backend": args.toxicity_backend}
    if args.detoxify_model:
        toxicity["model"] = args.detoxify_model
    if args.detoxify_checkpoint:
        toxicity.update(checkpoint=args.detoxify_checkpoint, huggingface_config_path=args.detoxify_config)
    return ProfileOptions(
        protocols=tuple(args.protocols), instructions=args.instructions, toxicity_prompts=args.toxicity_prompts,
        calibration_items=args.calibration_items, bbq_items=args.bbq_items, max_prompts=args.max_prompts,
        max_new_tokens=args.max_new_tokens, toxicity_samples=args.toxicity_samples, batch_size=args.batch_size,
        template=args.template, toxicity=toxicity, device=args.device,
        toxicity_judge=args.toxicity_judge == "toxblock",
        fluency_judge=None if args.fluency_judge == "none" else args.fluency_judge,
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", required=True, help="JSON, Markdown, PNG and the per-item cache (for resume)")
    p.add_argument("--protocols", nargs="+", default=list(MODEL_PROTOCOLS), choices=MODEL_PROTOCOLS)
    p.add_argument("--instructions", default="builtin:instructions", help="prompts for the textual profile")
    p.add_argument("--toxicity-prompts", default="builtin:toxicity")
    p.add_argument("--calibration-items", default="builtin:calibration")
    p.add_argument("--bbq-items", default="builtin:bbq")
    p.add_argument("--max-prompts", type=int, help="use only the first N rows of each set")
    p.add_argument("--max-new-tokens", type=int, default=256, help="greedy tokens per textual completion")
    p.add_argument("--toxicity-samples", type=int, default=25, help="samples per toxicity prompt (paper: 25)")
    p.add_argument("--toxicity-backend", default="detoxify", choices=["detoxify", "profanity"])
    p.add_argument("--toxicity-judge", default="toxblock", choices=["toxblock", "none"],
                   help="an independent toxicity classifier reported beside the scorer")
    p.add_argument("--fluency-judge", default="builtin:gemma3-270m",
                   help="causal LM whose NLL of each textual answer is reported; 'none' to skip")
    p.add_argument("--detoxify-model", help="original, unbiased or multilingual")
    p.add_argument("--detoxify-checkpoint")
    p.add_argument("--detoxify-config", help="local Hugging Face config folder for --detoxify-checkpoint")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--template", help="prompt template with {prompt}; default: the chat template, else the paper's")
    p.add_argument("--device")


def compare(args: argparse.Namespace) -> dict:
    options = _options(args)
    names = args.names or [Path(m).name or m for m in args.models] + [Path(t).stem for t in args.texts]
    sources = [("model", m) for m in args.models] + [("texts", t) for t in args.texts]
    if len(names) != len(sources):
        raise SystemExit(f"--names has {len(names)} entries for {len(sources)} models and text sets.")
    if len(set(names)) != len(names):
        raise SystemExit(f"Names must be unique, got {names}; pass --names.")
    cache = Path(args.output_dir) / "cache"
    profiles = {}
    for name, (kind, source) in zip(names, sources):
        run = profile_model if kind == "model" else profile_texts
        profiles[name] = run(source, options, cache, name)
    baseline = args.baseline or names[0]
    paths = report.write(profiles, baseline, args.output_dir)
    print(report.markdown(profiles, baseline))
    print("\n" + "\n".join(f"{k}: {v}" for k, v in paths.items()))
    return profiles


def inheritance(args: argparse.Namespace) -> dict:
    """Student before, student after, and the training texts: how far each attribute moved toward the source."""
    options = _options(args)
    options.protocols = tuple(p for p in options.protocols if p in ("textual", "toxicity"))
    cache = Path(args.output_dir) / "cache"
    profiles = {
        "before": profile_model(args.before, options, cache, "before"),
        "after": profile_model(args.after, options, cache, "after"),
        "source": profile_texts(args.source, options, cache, "source"),
    }
    moved = {}
    for label, values in report.rows(profiles):
        before, after, source = values
        if None in (before, after, source):
            continue
        gap = source - before
        moved[label] = {"before": before, "after": after, "source": source, "shift": after - before,
                        "toward_source": (after - before) / gap if gap else None}
    paths = report.write(profiles, "before", args.output_dir, name="inheritance",
                         title="Passive inheritance: student before / after vs the source data")
    (Path(args.output_dir) / "inheritance_summary.json").write_text(json.dumps(moved, indent=2))
    print(f"{'attribute':<26}{'before':>10}{'after':>10}{'source':>10}{'moved toward source':>22}")
    for label, m in moved.items():
        frac = "n/a" if m["toward_source"] is None else f"{m['toward_source'] * 100:+.0f}% of the gap"
        print(f"{label:<26}{m['before']:>10.4g}{m['after']:>10.4g}{m['source']:>10.4g}{frac:>22}")
    print("\n" + "\n".join(f"{k}: {v}" for k, v in paths.items()))
    return moved


def run(argv: list[str] | None = None) -> dict:
    """Parse `argv` and run the command; returns the profiles (compare) or the movement table (inheritance)."""
    parser = argparse.ArgumentParser(prog="ail-profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="profile models and/or text sets side by side")
    c.add_argument("--models", nargs="*", default=[], help="local paths or hub ids")
    c.add_argument("--texts", nargs="*", default=[], help="JSON/JSONL text sets (text/completion/winner column)")
    c.add_argument("--names", nargs="*")
    c.add_argument("--baseline", help="name of the baseline column (default: the first)")
    _common(c)
    i = sub.add_parser("inheritance", help="passive-inheritance report: before, after and the source data")
    i.add_argument("--before", required=True)
    i.add_argument("--after", required=True)
    i.add_argument("--source", required=True, help="the training texts (JSON/JSONL, or a trainer's round file)")
    _common(i)
    args = parser.parse_args(argv)
    if args.command == "compare" and not (args.models or args.texts):
        parser.error("compare needs --models and/or --texts")
    return compare(args) if args.command == "compare" else inheritance(args)


def main(argv: list[str] | None = None) -> None:
    run(argv)


if __name__ == "__main__":
    main()
