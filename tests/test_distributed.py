"""Multi-process runs on CPU (gloo) through `accelerate launch`: DDP, ZeRO-2, ZeRO-3, two nodes, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "dist_check.py"
RECIPE = ROOT / "recipes" / "offline" / "ddp_tiny.yaml"
pytestmark = pytest.mark.distributed


def accelerate(*args):
    return [sys.executable, "-m", "accelerate.commands.launch", *map(str, args)]


def run(cmd, timeout=600, env=None):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return proc


def check_run(out: Path, world: int = 2):
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]
    assert [r["world"] for r in ranks] == [world] * world
    assert ranks[0]["hashes"] and all(r["hashes"] == ranks[0]["hashes"] for r in ranks)
    assert all(r["round_stats"] == ranks[0]["round_stats"] for r in ranks)
    assert all(r["losses"] == ranks[0]["losses"] for r in ranks)
    losses = ranks[0]["losses"]
    assert losses[-1] < losses[0]
    assert len(list((out / "rounds").glob("round-*.jsonl"))) == 2
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    generated = model.generate(**tok("Explain tides.", return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > len(tok("Explain tides.")["input_ids"])
    card = (out / "README.md").read_text()
    assert "selection gain" in card and "mtld" in card
    return ranks[0]


@pytest.mark.parametrize("launch, port", [
    (["--config_file", "accelerate_configs/ddp_cpu.yaml"], 29710),
    (["--config_file", "accelerate_configs/zero2.yaml", "--num_processes", "2", "--mixed_precision", "no"], 29711),
    (["--config_file", "accelerate_configs/zero3.yaml", "--num_processes", "2", "--mixed_precision", "no"], 29712),
], ids=["ddp", "zero2", "zero3"])
def test_two_process_training(tmp_path, launch, port):
    out = tmp_path / "out"
    proc = run(accelerate(*launch, "--main_process_port", port, SCRIPT, "--config", RECIPE, "--output_dir", out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    first = check_run(out)
    assert first["round_stats"][0]["ai/mtld/selection_gain"] > 0
    assert "mtld" in proc.stdout and "before" in proc.stdout


def test_two_nodes_on_loopback(tmp_path):
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            accelerate("--config_file", "accelerate_configs/ddp_cpu.yaml", "--num_machines", 2, "--num_processes", 2,
                       "--machine_rank", rank, "--main_process_ip", "127.0.0.1", "--main_process_port", 29713,
                       SCRIPT, "--config", RECIPE, "--output_dir", out),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results[0][1][-3000:] + results[1][1][-3000:]
    check_run(out)


def test_ddp_kill_and_resume(tmp_path):
    out = tmp_path / "out"
    common = ["--config", RECIPE, "--output_dir", out, "--save_strategy", "steps", "--save_steps", 2]
    launch = ["--config_file", "accelerate_configs/ddp_cpu.yaml"]
    crashed = run(accelerate(*launch, "--main_process_port", 29714, SCRIPT, *common),
                  env={"AIL_TEST_CRASH_AFTER_SAVE": "4"})
    assert crashed.returncode != 0 and (out / "checkpoint-4").is_dir() and not (out / "rank0.json").exists()
    records = {p.name: p.read_text() for p in (out / "rounds").glob("round-*.jsonl")}
    assert set(records) == {"round-00000.jsonl", "round-00001.jsonl"}

    resumed = run(accelerate(*launch, "--main_process_port", 29715, SCRIPT, *common,
                             "--resume_from_checkpoint", out / "checkpoint-4"))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    rank0 = json.loads((out / "rank0.json").read_text())
    assert rank0["global_step"] == 6
    assert rank0["hashes"] == []  # round 1 (steps 4-6) came from its records, not regenerated
    assert [s["ai/round"] for s in rank0["round_stats"]] == [1]
    assert {p.name: p.read_text() for p in (out / "rounds").glob("round-*.jsonl")} == records
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["global_step"] == 4
