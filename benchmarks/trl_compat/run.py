"""Drop-in check: TRL's own `tests/test_sft_trainer.py`, run under `SFTTrainer` and again with the class swapped for
`ActiveInheritanceTrainer` (plus `reward_funcs=["length"]`), offline.

    pip install -c constraints.txt peft parameterized pytest-datadir   # what TRL's test file imports
    python benchmarks/trl_compat/run.py --trl-repo /path/to/huggingface/trl --rev <commit> [-k EXPR]

The test file, its helpers and TRL's zen-dataset generator are read from the given TRL checkout (a work tree or a
bare clone) into a temporary folder, never into this repository. Hub models resolve to tiny local stand-ins of the
same architectures with their families' chat templates (`standins.py`); ids without a stand-in fail alike under
both trainers, so they fall out of the comparison. Writes `benchmarks/results/trl_compat.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ["tests/test_sft_trainer.py", "tests/testing_utils.py", "tests/conftest.py", "tests/__init__.py",
         "scripts/generate_zen_dataset.py", "scripts/generate_harmony_dataset.py",
         "scripts/generate_toolcall_dataset.py", "tests/data/template.jinja"]
OPTIONAL = ("_dataset.py", ".jinja")  # absent in some checkouts


def copy_from(repo: Path, work: Path, rev: str) -> str:
    """Copy FILES at `rev` out of a TRL work tree or bare clone; returns the commit."""
    git = ["git", "--git-dir", str(repo / ".git")] if (repo / ".git").exists() else ["git", "--git-dir", str(repo)]
    commit = subprocess.run(git + ["rev-parse", rev], capture_output=True, text=True, check=True).stdout.strip()
    for name in FILES:
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shown = subprocess.run(git + ["show", f"{commit}:{name}"], capture_output=True)
        if shown.returncode == 0:
            target.write_bytes(shown.stdout)
        elif name.endswith(("__init__.py", "conftest.py")):
            target.write_text("")
        elif name.endswith(OPTIONAL):
            target.unlink(missing_ok=True)
        else:
            raise FileNotFoundError(f"{name} is not in the TRL checkout at {repo}")
    return commit


def outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """test id -> (passed / failed / skipped, first line of the failure)."""
    out = {}
    for case in ET.parse(report).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, message = "failed", (child.get("message") or "").splitlines()[0][:300] if child.get(
                    "message") else ""
            elif child.tag == "skipped":
                status = "skipped"
        out[test] = (status, message)
    return out


def run_pytest(work: Path, swap: bool, select: str | None) -> dict:
    report = work / f"report-{'swap' if swap else 'sft'}.xml"
    env = {**os.environ, "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "AIL_COMPAT_WORK": str(work), "AIL_SWAP": "1" if swap else "0", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(work)])}
    cmd = [sys.executable, "-m", "pytest", "tests/test_sft_trainer.py", "-p", "swap", "-q", "-p", "no:cacheprovider",
           "--junitxml", str(report), "-o", "addopts="] + (["-k", select] if select else [])
    subprocess.run(cmd, cwd=work, env=env)
    return outcomes(report)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trl-repo", required=True, type=Path)
    p.add_argument("--rev", default="HEAD", help="TRL commit whose test file matches the installed trl's API")
    p.add_argument("-k", dest="select", default=None, help="pytest -k expression (a subset)")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--output", type=Path, default=HERE.parent / "results" / "trl_compat.json")
    a = p.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="ail-trl-compat-"))
    commit = copy_from(a.trl_repo, work, a.rev)
    env = {**os.environ, "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, str(HERE / "standins.py"), str(work)], env=env, check=True)
    sft, swapped = run_pytest(work, False, a.select), run_pytest(work, True, a.select)
    passed_sft = sorted(t for t, (s, _) in sft.items() if s == "passed")
    passed_swap = sorted(t for t, (s, _) in swapped.items() if s == "passed")
    lost = {t: swapped.get(t, ("missing", ""))[1] for t in passed_sft if t not in passed_swap}
    result = {"trl_commit": commit, "tests": len(sft), "passed_under_sfttrainer": len(passed_sft),
              "passed_with_swap": len(passed_swap), "lost_with_swap": lost,
              "passed_only_with_swap": sorted(set(passed_swap) - set(passed_sft))}
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "passed_only_with_swap"}, indent=2))
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
