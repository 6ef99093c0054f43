"""Smoke runs of the benchmark scripts (tiny sizes) so they keep working; no timing is asserted."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scoring_benchmark_smoke(tmp_path):
    out = tmp_path / "scoring.json"
    proc = subprocess.run([sys.executable, "benchmarks/bench_scoring.py", "--smoke", "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["ratio_vs_lexicalrichness"]) == {"mtld", "mattr", "hdd"}
    assert "lexicalrichness" in proc.stdout
