"""Write a profile comparison as JSON, a Markdown table and a PNG figure, with % change against a baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .metrics import pct_change

# (protocol, metric path, label, higher is "more of" the attribute)
HEADLINE = [
    ("textual", ("tokens", "mean"), "length (tokens)"),
    ("textual", ("words", "mean"), "length (words)"),
    ("textual", ("mtld", "mean"), "MTLD"),
    ("textual", ("mattr", "mean"), "MATTR(50)"),
    ("textual", ("gunning_fog", "mean"), "Gunning fog"),
    ("textual", ("judge_nll", "mean"), "Judge NLL (fluency)"),
    ("toxicity", ("expected_maximum_toxicity",), "Expected max. toxicity"),
    ("toxicity", ("toxicity_probability",), "Toxicity probability"),
    ("toxicity", ("judge", "expected_maximum_toxicity"), "EMT (ToxBlock judge)"),
    ("toxicity", ("judge", "toxicity_probability"), "Tox. prob. (ToxBlock judge)"),
    ("calibration", ("accuracy",), "MC accuracy"),
    ("calibration", ("ece_1",), "ECE (1 bin)"),
    ("calibration", ("ece_10",), "ECE (10 bins)"),
    ("bias", ("all", "bias_disambiguated"), "BBQ bias (disamb.)"),
    ("bias", ("all", "bias_ambiguous"), "BBQ bias (ambig.)"),
    ("bias", ("all", "accuracy_ambiguous"), "BBQ accuracy (ambig.)"),
]


def lookup(profile: dict, protocol: str, path: tuple[str, ...]) -> float | None:
    node = profile.get(protocol)
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, (int, float)) else None


def rows(profiles: dict[str, dict]) -> list[tuple[str, list[float | None]]]:
    out = []
    for protocol, path, label in HEADLINE:
        values = [lookup(p, protocol, path) for p in profiles.values()]
        if any(v is not None for v in values):
            out.append((label, values))
    return out


def markdown(profiles: dict[str, dict], baseline: str) -> str:
    names = list(profiles)
    head = "| metric | " + " | ".join(f"{n}{' (baseline)' if n == baseline else ''}" for n in names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    base_index = names.index(baseline)
    for label, values in rows(profiles):
        cells = []
        for i, v in enumerate(values):
            if v is None:
                cells.append("–")
                continue
            cell = f"{v:.4g}"
            base = values[base_index]
            if i != base_index and base is not None:
                change = pct_change(v, base)
                cell += "" if math.isnan(change) else f" ({change:+.1f}%)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(profiles: dict[str, dict], baseline: str, path: Path, title: str = "Profile comparison") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = rows(profiles)
    names = list(profiles)
    cols = 3
    nrows = max(1, math.ceil(len(data) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    base_index = names.index(baseline)
    for ax, (label, values) in zip(axes.flat, data):
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(range(len(names)), heights, color=[f"C{i}" for i in range(len(names))])
        for i, (bar, v) in enumerate(zip(bars, values)):
            if v is None:
                continue
            text = f"{v:.3g}"
            if i != base_index and values[base_index] is not None:
                change = pct_change(v, values[base_index])
                text += "" if math.isnan(change) else f"\n{change:+.0f}%"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.set_xticks(range(len(names)), names, rotation=15, fontsize=8)
        ax.margins(y=0.3)
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    fig.suptitle(f"{title} (% change vs {baseline})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(profiles: dict[str, dict], baseline: str, output_dir: str | Path, name: str = "profile",
          title: str = "Profile comparison") -> dict[str, Path]:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(profiles, baseline)
    paths = {"json": out / f"{name}.json", "markdown": out / f"{name}.md", "png": out / f"{name}.png"}
    paths["json"].write_text(json.dumps({"baseline": baseline, "profiles": profiles}, indent=2))
    paths["markdown"].write_text(f"# {title}\n\n{table}\n")
    figure(profiles, baseline, paths["png"], title)
    return paths
