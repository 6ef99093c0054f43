"""Tables the docs generate from the code, so they cannot drift: the configuration reference (from the dataclasses'
`metadata={"help": ...}`), the bad-input table (from `tests/test_bad_input.py`'s case list), and the results (from
the benchmarks' own summaries and the main job's recorded run).

Used by `scripts/mkdocs_hooks.py` at `mkdocs build`; `python scripts/docs_tables.py config|bad-input` prints one.
The README's results blocks are written in place between their markers: `python scripts/docs_tables.py readme`, and
a test fails while the README differs from the summaries."""

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


def _summary_md(folder: str, name: str) -> str:
    """A benchmark's latest Markdown summary, as the benchmark wrote it."""
    return (ROOT / "benchmarks" / "results" / folder / name).read_text().strip()


def shared_pool_table() -> str:
    """The shared-pool benchmark's latest summary, as the benchmark wrote it."""
    return _summary_md("shared-pool", "shared_pool.md")


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
LONG_CAP = 384  # held-out answers' cap of the length ↑ runs (`shared_pool.py --eval-cap 384`), against base at 384
LONG_CAP_ROWS = {"length_up_k8_p1.0": f"length ↑, held-out answers up to {LONG_CAP} tokens",
                 "length_up_k8_p1.0_epochs2": f"length ↑, 2 epochs, held-out answers up to {LONG_CAP} tokens"}


def _pct(pct: float, low: float, high: float) -> str:
    return f"{pct:+.1f}% [{low:+.1f}, {high:+.1f}]"


def _change(entry: dict | None, bold: bool = False, seeds: int | None = None) -> str:
    if not entry or "pooled" not in entry:
        return "–"
    text = _pct(*entry["pooled"])
    text = f"**{text}**" if bold else text
    return text if seeds is None or entry.get("seeds") == seeds else f"{text} (seeds {', '.join(entry['per_seed'])})"


def _results(folder: str, summary: dict | None) -> dict:
    return summary or json.loads((ROOT / "benchmarks" / "results" / folder / f"{folder.replace('-', '_')}.json")
                                 .read_text())


def _body(summary: dict, labels: dict[str, str], cells) -> list[str]:
    """One row per labelled condition that has run: its label, its seed count, then `cells(name, row)`."""
    return [f"| {label} | {summary['conditions'][name]['seeds']} | {cells(name, summary['conditions'][name])} |"
            for name, label in labels.items() if name in summary["conditions"]]


def _rows(header: str, summary: dict, labels: dict[str, str], cells) -> str:
    """A Markdown table: `header`, then `_body`."""
    return "\n".join([header, "|---" * header.count(" | ") + "|---|", *_body(summary, labels, cells)])


def _pool_cells(summary: dict):
    def cells(name: str, row: dict) -> str:
        target, vb = summary["targets"].get(name, [None])[0], row["vs_base"]
        per_seed = " / ".join(f"{v[0]:+.1f}%" for v in vb[target or "mtld"]["per_seed"].values())
        return (f"{_change(vb['mtld'], target == 'mtld')} | {_change(vb['tokens'], target == 'tokens')} | "
                f"{per_seed} | {_change(vb.get('base_nll'), seeds=row['seeds'])}")

    return cells


def readme_table(summary: dict | None = None, long_cap: dict | None = None) -> str:
    """The README's results: each shared-pool condition's held-out change against base, pooled over its seeds; then
    the conditions measured at the longer held-out cap, against base at that cap."""
    summary = _results("shared-pool", summary)
    long_path = ROOT / "benchmarks" / "results" / "shared-pool" / f"shared_pool-eval{LONG_CAP}.json"
    if long_cap is None and long_path.exists():
        long_cap = json.loads(long_path.read_text())
    table = _rows("| selection (best of 8 from the top_p 1.0 pool unless named) | seeds | MTLD | tokens | per seed "
                  "(the bold change; MTLD for passive) | base model's NLL of the answers |", summary, README_ROWS,
                  _pool_cells(summary))
    return "\n".join([table, *_body(long_cap, LONG_CAP_ROWS, _pool_cells(long_cap))]) if long_cap else table


def toxicity_table(summary: dict | None = None) -> str:
    """The README's toxicity results: each condition's held-out change against base, pooled over its seeds."""
    summary = _results("toxicity-pool", summary)
    base = summary["conditions"]["base"]["means"]["toxic"]

    def cells(name: str, row: dict) -> str:
        vb = row["vs_base"]
        per_seed = " / ".join(f"{v[0]:+.1f}%" for v in vb["max_toxicity"]["per_seed"].values())
        return (f"{_change(vb['max_toxicity'], name != 'passive')} | {per_seed} | {row['means']['toxic']:.0%} "
                f"(base {base:.0%}) | {_change(vb['mean_toxicity'])} | {_change(vb['tokens'])} | "
                f"{_change(vb['base_nll'])}")

    return _rows("| selection (from the top_p 1.0 pool of 8 continuations) | seeds | Expected Maximum Toxicity | "
                 "per seed | toxicity probability | mean toxicity | tokens | base model's NLL |", summary,
                 TOXICITY_ROWS, cells)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s"


def main_job_block(record: dict | None = None, others: list[dict] | None = None) -> str:
    """The main job's latest recorded run (`python benchmarks/main_job.py --shipped`): what it printed, and its time;
    then the same command's runs on other seeds (`--shipped --seeds 7`), one line each, and their pooled change
    (`report.pooled_change`) where every run recorded its per-prompt values."""
    folder = ROOT / "benchmarks" / "results" / "main-job"
    if record is None:
        record = json.loads((folder / "shipped.json").read_text())
    if others is None:
        others = [json.loads(p.read_text()) for p in sorted(folder.glob("shipped-seed*.json"))]
    rate = record.get("rounds", [{}])[0].get("ai/generation_tokens_per_second")
    text = (f"```\n{record['printed']}\n```\n\nThat run (`{record['command']}`, seed 42, alone on this 2-core CPU box, "
            f"SmolLM2 already converted) took {_duration(record['seconds'])}"
            + (f"; its candidates were sampled at {rate:.0f} tokens/s." if rate else "."))
    for other in others:
        mtld, tokens = (other["held_out"]["change"][k] for k in ("mtld", "tokens"))
        text += (f"\nThe same job, `{other['command']}`: MTLD {_pct(mtld['change_pct'], *mtld['ci95_pct'])}, tokens "
                 f"{_pct(tokens['change_pct'], *tokens['ci95_pct'])}, {_duration(other['seconds'])}.")
    runs = [record, *others]
    if len(runs) > 1 and all("per_prompt" in r["held_out"] for r in runs):
        from ail_trainer.report import pooled_change

        mtld, tokens = (pooled_change([r["held_out"] for r in runs], key) for key in ("mtld", "tokens"))
        text += (f"\nPooled over these {len(runs)} runs (the base model's held-out answers are the same for each; "
                 f"each prompt's after value is its mean over the runs): MTLD {_pct(*mtld)}, tokens {_pct(*tokens)}.")
    return text


TOXICITY_ROWS = {"passive": "passive (k=1)", "detox_k4": "least toxic of 4", "detox_k8": "least toxic of 8",
                 "detox_k8_epochs4": "least toxic of 8, 4 epochs"}
def looks_line(ledger: Path = ROOT / "benchmarks" / "protocol" / "ledger.jsonl") -> str:
    """How many times each test split was read, from the ledger."""
    entries = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    counts: dict[str, int] = {}
    for entry in entries:
        split = entry["test_split"].rsplit(" (", 1)[0]
        counts[split] = counts.get(split, 0) + 1
    return (f"Test-split looks in [the ledger](benchmarks/protocol/ledger.jsonl): **{len(entries)}** ("
            + ", ".join(f"{n} on {split}" for split, n in counts.items()) + ").")


def outside_block() -> str:
    """The ledger's count, then every outside-prompt test-split summary, as `outside_prompts.py` wrote it."""
    summaries = sorted((ROOT / "benchmarks" / "results" / "outside").glob("*-test/summary.md"))
    return "\n\n".join([looks_line()] + [f"`{p.parent.name}`: " + p.read_text().strip() for p in summaries])


END_MARKER = "<!-- /results -->"
# the README's generated blocks: the marker that opens each, and the table written there
README_BLOCKS = {"<!-- results: main-job -->": main_job_block, "<!-- results: shared-pool -->": readme_table,
                 "<!-- results: toxicity-pool -->": toxicity_table, "<!-- results: outside -->": outside_block}


def write_readme(path: Path = ROOT / "README.md") -> bool:
    """Write each generated table between its markers in the README; True if the file changed."""
    text = new = path.read_text()
    for begin, table in README_BLOCKS.items():
        if new.count(begin) != 1 or END_MARKER not in new.partition(begin)[2]:
            raise ValueError(f"{path} needs exactly one {begin!r} line, followed by {END_MARKER!r}, where the table "
                             "goes; add them and rerun `python scripts/docs_tables.py readme`.")
        head, _, rest = new.partition(begin)
        new = f"{head}{begin}\n{table()}\n{END_MARKER}{rest.partition(END_MARKER)[2]}"
    path.write_text(new)
    return new != text


TABLES = {"config": config_table, "script": script_table, "bad-input": bad_input_table,
          "shared-pool": shared_pool_table, "pool-selection": pool_selection_table,
          "shared-pool-long-cap": lambda: _summary_md("shared-pool", f"shared_pool-eval{LONG_CAP}.md"),
          "main-job": main_job_block, "main-job-dev": lambda: _summary_md("main-job", "main_job.md"),
          "toxicity-pool": lambda: _summary_md("toxicity-pool", "toxicity_pool.md"), "outside": outside_block}

if __name__ == "__main__":
    if sys.argv[1] == "readme":
        print("README.md updated" if write_readme() else "README.md already matches the summary")
    else:
        print(TABLES[sys.argv[1]]())
