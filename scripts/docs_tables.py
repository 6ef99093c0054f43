"""Tables the docs generate from the code, so they cannot drift: the configuration reference (from the dataclasses'
`metadata={"help": ...}`), the bad-input table (from `tests/test_bad_input.py`'s case list) and the shared-pool
results (from the benchmark's own summary).

Used by `docs/hooks.py` at `mkdocs build`; `python scripts/docs_tables.py config|bad-input` prints one."""

from __future__ import annotations

import dataclasses
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


TABLES = {"config": config_table, "script": script_table, "bad-input": bad_input_table,
          "shared-pool": shared_pool_table, "pool-selection": pool_selection_table}

if __name__ == "__main__":
    print(TABLES[sys.argv[1]]())
