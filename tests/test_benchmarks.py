"""Smoke runs of the benchmark scripts (tiny sizes) so they keep working; no timing is asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_scoring_benchmark_smoke(tmp_path):
    out = tmp_path / "scoring.json"
    proc = subprocess.run([sys.executable, "benchmarks/bench_scoring.py", "--smoke", "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["ratio_vs_lexicalrichness"]) == {"mtld", "mattr", "hdd"}
    assert "lexicalrichness" in proc.stdout


@pytest.mark.parametrize("script, key", [
    ("bench_generation.py", "ratio_vs_raw_best"),
    ("bench_round.py", "percent"),
    ("bench_e2e.py", "diy_over_ours"),
    ("bench_memory.py", "teacher_delta_mb"),
])
def test_benchmark_smoke(tmp_path, script, key):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", "--smoke", "--output", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "AIL_BENCH_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert key in json.loads(out.read_text())
