"""Tables the docs generate from the code, so they cannot drift: the configuration reference (from the dataclasses'
`metadata={"help": ...}`), the bad-input table (from `tests/test_bad_input.py`'s case list) and the shared-pool
results (from the benchmark's own summary).

Used by `scripts/mkdocs_hooks.py` at `mkdocs build`; `python scripts/docs_tables.py config|bad-input` prints one.
The README's results table is written in place between its markers: `python scripts/docs_tables.py readme`, and a
test fails while the README differs from the summary."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f"`{f.default_factory()!r}`"  # type: ignore[misc]
    return "required"


def fields_table(cls: type, own_only: bool = True) -> str:
    """A Markdown table of `cls`'s fields (those it declares itself, by default): name, default, help."""
    own = set(cls.__dict__.get("__annotations__", {})) if own_only else None
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if own is not None and f.name not in own or f.name.startswith("_"):
            continue
        rows.append(f"| `{f.name}` | {_cell(_default(f))} | {_cell(f.metadata.get('help', ''))} |")
    return "\n".join(rows)


def config_table() -> str:
    from ail_trainer import ActiveInheritanceConfig

    return fields_table(ActiveInheritanceConfig)


def script_table() -> str:
    from ail_trainer.scripts.train import ActiveInheritanceScriptArguments

    return fields_table(ActiveInheritanceScriptArguments)


def _plain(pattern: str) -> str:
    """A test's regex as the text it requires."""
    return re.sub(r"\\(.)", r"\1", pattern).replace(".*", " … ")


def bad_input_cases() -> list:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import test_bad_input
    finally:
        sys.path.remove(str(ROOT / "tests"))
    return test_bad_input.CASES


def bad_input_table() -> str:
    rows = ["| input | the error must say | and also |", "|---|---|---|"]
    rows += [f"| {_cell(c.id)} | {_cell(_plain(c.problem))} | {_cell(_plain(c.fix))} |" for c in bad_input_cases()]
    return "\n".join(rows)


def shared_pool_table() -> str:
    """The shared-pool benchmark's latest summary, as the benchmark wrote it."""
    return (ROOT / "benchmarks" / "results" / "shared-pool" / "shared_pool.md").read_text().strip()


def pool_selection_table() -> str:
    """The selection rules on each scored pool's training prompts, as `benchmarks/pool_selection.py` wrote them."""
    folder = ROOT / "benchmarks" / "results" / "shared-pool"
    return "\n\n".join(f"**{p.stem.removeprefix('selection-')}**: {p.read_text().strip()}"
                         for p in sorted(folder.glob("selection-*.md")))


# the README's shared-pool rows, in order: condition -> label (a condition not yet run is left out)
README_ROWS = {
    "passive": "passive (k=1), top_p 0.9 pool",
    "mtld_k8": "MTLD, top_p 0.9 pool",
    "passive_p1.0": "passive (k=1)",
    "mtld_k8_p1.0": "MTLD",
    "mtld_fluent_k8_p1.0": "MTLD + 0.5 × likelihood (z-scored)",
    "mtld_k8_p1.0_online": "MTLD, online: the policy samples 8 every 10 steps",
    "length_down_k8_p1.0": "length ↓",
    "length_up_k8_p1.0": "length ↑",
}
README_MARKERS = ("<!-- results: shared-pool -->", "<!-- /results -->")


def _change(entry: dict | None, bold: bool = False, seeds: int | None = None) -> str:
    if not entry or "pooled" not in entry:
        return "–"
    pct, low, high = entry["pooled"]
    text = f"{pct:+.1f}% [{low:+.1f}, {high:+.1f}]"
    text = f"**{text}**" if bold else text
    return text if seeds is None or entry.get("seeds") == seeds else f"{text} (seeds {', '.join(entry['per_seed'])})"


def readme_table(summary: dict | None = None) -> str:
    """The README's results: each shared-pool condition's held-out change against base, pooled over its seeds."""
    if summary is None:
        summary = json.loads((ROOT / "benchmarks" / "results" / "shared-pool" / "shared_pool.json").read_text())
    rows = ["| selection (best of 8 from the top_p 1.0 pool unless named) | seeds | MTLD | tokens | per seed (the bold "
            "change; MTLD for passive) | base model's NLL of the answers |", "|---|---|---|---|---|---|"]
    for name, label in README_ROWS.items():
        row = summary["conditions"].get(name)
        if row is None:
            continue
        target = summary["targets"].get(name, [None])[0]
        vb = row["vs_base"]
        per_seed = " / ".join(f"{v[0]:+.1f}%" for v in vb[target or "mtld"]["per_seed"].values())
        rows.append(f"| {label} | {row['seeds']} | {_change(vb['mtld'], target == 'mtld')} | "
                    f"{_change(vb['tokens'], target == 'tokens')} | {per_seed} | "
                    f"{_change(vb.get('base_nll'), seeds=row['seeds'])} |")
    return "\n".join(rows)


def write_readme(path: Path = ROOT / "README.md") -> bool:
    """Put `readme_table()` between the README's markers; True if the file changed."""
    text = path.read_text()
    begin, end = README_MARKERS
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    new = f"{head}{begin}\n{readme_table()}\n{end}{tail}"
    path.write_text(new)
    return new != text


TABLES = {"config": config_table, "script": script_table, "bad-input": bad_input_table,
          "shared-pool": shared_pool_table, "pool-selection": pool_selection_table}

if __name__ == "__main__":
    if sys.argv[1] == "readme":
        print("README.md updated" if write_readme() else "README.md already matches the summary")
    else:
        print(TABLES[sys.argv[1]]())
