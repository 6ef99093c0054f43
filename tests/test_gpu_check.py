"""`scripts/gpu_check.sh`, the checks for a lent GPU: its syntax here. Its CPU dry-run (GPU_CHECK_DRY_RUN=1, about a
minute) and its `pack` step (which downloads the SmolLM2 wheel) are run by hand, not in the suite."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_script_parses():
    proc = subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
