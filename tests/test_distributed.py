"""Multi-process runs on CPU (gloo) through `accelerate launch`: DDP, ZeRO-2/3, FSDP2, two nodes, crash and resume.

Every launch starts from empty caches (`AIL_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`), the path a new machine takes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "dist_check.py"
RECIPE = ROOT / "recipes" / "offline" / "ddp_tiny.yaml"
DDP = ["--config_file", "accelerate_configs/ddp_cpu.yaml"]
ZERO2 = ["--config_file", "accelerate_configs/zero2.yaml", "--num_processes", "2", "--mixed_precision", "no"]
ZERO3 = ["--config_file", "accelerate_configs/zero3.yaml", "--num_processes", "2", "--mixed_precision", "no"]
FSDP = ["--config_file", "accelerate_configs/fsdp_cpu.yaml"]
pytestmark = pytest.mark.distributed


def accelerate(*args):
    return [sys.executable, "-m", "accelerate.commands.launch", *map(str, args)]


def fresh_caches(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "caches"
    return {"AIL_CACHE": str(root / "ail"), "HF_HOME": str(root / "hf"), "XDG_CACHE_HOME": str(root / "xdg")}


def run(cmd, tmp_path: Path, env=None, timeout=600):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **fresh_caches(tmp_path), **(env or {})})


def ranks_of(out: Path, world: int = 2) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


def check_run(out: Path, world: int = 2):
    ranks = ranks_of(out, world)
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


def records_of(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "rounds").glob("round-*.jsonl"))}


@pytest.mark.parametrize("launch, port, backend", [
    (DDP, 29710, "MULTI_CPU"), (ZERO2, 29711, "DEEPSPEED"), (ZERO3, 29712, "DEEPSPEED"),
], ids=["ddp", "zero2", "zero3"])
def test_two_process_training(tmp_path, launch, port, backend):
    out = tmp_path / "out"
    proc = run(accelerate(*launch, "--main_process_port", port, SCRIPT, "--config", RECIPE, "--output_dir", out),
               tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    first = check_run(out)
    assert first["distributed_type"] == backend
    assert first["round_stats"][0]["ai/mtld/selection_gain"] > 0
    assert "mtld" in proc.stdout and "before" in proc.stdout


def test_fsdp2_on_cpu(tmp_path):
    """The trainer under real FSDP2 (sharded DTensor parameters, generation with synced ranks, full state dict
    saved). Accelerate gates FSDP to accelerators, so this run lifts that one gate (dist_check.py)."""
    out = tmp_path / "out"
    proc = run(accelerate(*FSDP, "--main_process_port", 29716, SCRIPT, "--config", RECIPE, "--output_dir", out),
               tmp_path, env={"AIL_TEST_FSDP_ON_CPU": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    first = check_run(out)
    assert first["distributed_type"] == "FSDP" and first["param_types"] == ["DTensor"]


def test_fsdp_config_on_cpu_fails_clearly(tmp_path):
    """Unpatched, Accelerate would silently run FSDP's config as plain DDP on CPU; the trainer refuses instead."""
    proc = run(accelerate(*FSDP, "--main_process_port", 29717, SCRIPT, "--config", RECIPE, "--output_dir",
                          tmp_path / "out"), tmp_path)
    assert proc.returncode != 0
    assert "FSDP was requested" in proc.stderr and "Accelerate enables FSDP only on GPUs" in proc.stderr
    assert "zero3.yaml" in proc.stderr
    assert not (tmp_path / "out" / "rounds").exists()  # failed before any generation


def test_two_nodes_on_loopback(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, **fresh_caches(tmp_path)}
    procs = [
        subprocess.Popen(
            accelerate(*DDP, "--num_machines", 2, "--num_processes", 2, "--machine_rank", rank, "--main_process_ip",
                       "127.0.0.1", "--main_process_port", 29713, SCRIPT, "--config", RECIPE, "--output_dir", out),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for rank in (0, 1)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results[0][1][-3000:] + results[1][1][-3000:]
    check_run(out)


@pytest.mark.parametrize("launch, port", [(DDP, 29714), (ZERO3, 29718)], ids=["ddp", "zero3"])
def test_kill_after_checkpoint_and_resume(tmp_path, launch, port):
    out = tmp_path / "out"
    common = ["--config", RECIPE, "--output_dir", out, "--save_strategy", "steps", "--save_steps", 2]
    crashed = run(accelerate(*launch, "--main_process_port", port, SCRIPT, *common), tmp_path,
                  env={"AIL_TEST_CRASH_AFTER_SAVE": "4"})
    assert crashed.returncode != 0 and (out / "checkpoint-4").is_dir() and not (out / "rank0.json").exists()
    records = records_of(out)
    assert set(records) == {"round-00000.jsonl", "round-00001.jsonl"}

    resumed = run(accelerate(*launch, "--main_process_port", port + 100, SCRIPT, *common,
                             "--resume_from_checkpoint", out / "checkpoint-4"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    ranks = ranks_of(out)
    assert [r["global_step"] for r in ranks] == [6, 6]
    assert [r["hashes"] for r in ranks] == [[], []]  # round 1 (steps 4-6) came from its records
    assert [s["ai/round"] for s in ranks[0]["round_stats"]] == [1]
    assert ranks[0]["losses"] == ranks[1]["losses"] and len(ranks[0]["losses"]) == 6  # history restored + 2
    assert records_of(out) == records
    assert json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["global_step"] == 6


def _uninterrupted_round_hashes(tmp_path: Path, port: int) -> list[str]:
    out = tmp_path / "reference"
    proc = run(accelerate(*DDP, "--main_process_port", port, SCRIPT, "--config", RECIPE, "--output_dir", out),
               tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return ranks_of(out)[0]["hashes"]


def test_kill_in_the_middle_of_a_rounds_generation(tmp_path):
    """Killed while generating round 1 (nothing of it written): resume regenerates exactly that round, identical to
    an uninterrupted run's, and leaves round 0's records untouched."""
    out = tmp_path / "out"
    common = ["--config", RECIPE, "--output_dir", out, "--save_strategy", "steps", "--save_steps", 3]
    crashed = run(accelerate(*DDP, "--main_process_port", 29720, SCRIPT, *common), tmp_path,
                  env={"AIL_TEST_CRASH_IN_ROUND": "1"})
    assert crashed.returncode != 0 and (out / "checkpoint-3").is_dir()
    records = records_of(out)
    assert set(records) == {"round-00000.jsonl"}
    assert not list((out / "rounds").glob("*.tmp"))

    resumed = run(accelerate(*DDP, "--main_process_port", 29721, SCRIPT, *common,
                             "--resume_from_checkpoint", out / "checkpoint-3"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    ranks = ranks_of(out)
    assert [r["global_step"] for r in ranks] == [6, 6]
    assert len(ranks[0]["hashes"]) == 1 and ranks[0]["hashes"] == ranks[1]["hashes"]
    assert [s["ai/round"] for s in ranks[0]["round_stats"]] == [1]
    after = records_of(out)
    assert set(after) == {"round-00000.jsonl", "round-00001.jsonl"}
    assert after["round-00000.jsonl"] == records["round-00000.jsonl"]
    assert ranks[0]["hashes"][0] == _uninterrupted_round_hashes(tmp_path, 29722)[1]


def test_kill_after_a_rounds_records_before_the_next_checkpoint(tmp_path):
    """Killed right after round 1's records were written (checkpoint-3 is older): resume reuses them."""
    out = tmp_path / "out"
    common = ["--config", RECIPE, "--output_dir", out, "--save_strategy", "steps", "--save_steps", 3]
    crashed = run(accelerate(*DDP, "--main_process_port", 29723, SCRIPT, *common), tmp_path,
                  env={"AIL_TEST_CRASH_AFTER_RECORDS": "1"})
    assert crashed.returncode != 0 and (out / "checkpoint-3").is_dir() and not (out / "checkpoint-6").exists()
    records = records_of(out)
    assert set(records) == {"round-00000.jsonl", "round-00001.jsonl"}
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "rounds").glob("round-*.jsonl")}

    resumed = run(accelerate(*DDP, "--main_process_port", 29724, SCRIPT, *common,
                             "--resume_from_checkpoint", out / "checkpoint-3"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    ranks = ranks_of(out)
    assert [r["global_step"] for r in ranks] == [6, 6]
    assert [r["hashes"] for r in ranks] == [[], []]  # nothing regenerated
    assert [s["ai/round"] for s in ranks[0]["round_stats"]] == [1]
    assert records_of(out) == records
    assert {p.name: p.stat().st_mtime_ns for p in (out / "rounds").glob("round-*.jsonl")} == mtimes


def test_two_processes_convert_the_real_model_once_from_an_empty_cache(tmp_path):
    """First use of builtin:smollm2-135m-instruct under a 2-process launch: rank 0 converts under a file lock, the
    other rank waits on the lock (never on a collective), and both train on the same folder. The gemma test below
    has rank 1 build, so both ranks' build paths are covered."""
    out = tmp_path / "out"
    proc = run(accelerate(*DDP, "--main_process_port", 29725, SCRIPT, "--config", RECIPE, "--output_dir", out,
                          "--model_name_or_path", "builtin:smollm2-135m-instruct", "--max_steps", 1,
                          "--num_candidates", 2, "--max_completion_length", 8, "--per_device_train_batch_size", 2,
                          "--eval_split", "none", "--learning_rate", "1e-5"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("Converting SmolLM2-135M-Instruct") == 1
    converted = tmp_path / "caches" / "ail" / "smollm2-135m-instruct-fp32"
    assert (converted / "model.safetensors").is_file()
    assert [p.name for p in converted.parent.iterdir() if p.name.startswith(".")] == []
    ranks = ranks_of(out)
    assert [r["global_step"] for r in ranks] == [1, 1] and ranks[0]["hashes"] == ranks[1]["hashes"]
    share_with_later_tests(converted)


def test_two_processes_convert_the_gemma_teacher_once_from_an_empty_cache(tmp_path):
    """First use of builtin:gemma3-270m as a teacher (the paper's template) under a 2-process launch, rank 1
    building: it is assembled and converted once, under the file lock, and both ranks generate from it."""
    out = tmp_path / "out"
    teacher = json.dumps({"model": "builtin:gemma3-270m", "prompt_template": "question_answer", "num_candidates": 1})
    proc = run(accelerate(*DDP, "--main_process_port", 29727, SCRIPT, "--config", RECIPE, "--output_dir", out,
                          "--teachers", teacher, "--max_steps", 1, "--num_candidates", 1,
                          "--max_completion_length", 8, "--per_device_train_batch_size", 2, "--eval_split", "none"),
               tmp_path, env={"AIL_TEST_RANK1_BUILDS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("Converting gemma-3-270m-q4_k_m.gguf") == 1
    converted = tmp_path / "caches" / "ail" / "gemma3-270m-fp32"
    assert (converted / "model.safetensors").is_file() and (converted / "GEMMA_TERMS.html").is_file()
    assert not (converted / "gguf").exists()  # the assembled GGUF is not kept
    assert [p.name for p in converted.parent.iterdir() if p.name.startswith(".")] == []
    ranks = ranks_of(out)
    assert [r["global_step"] for r in ranks] == [1, 1] and ranks[0]["hashes"] == ranks[1]["hashes"]
    sources = {c["source"] for f in (out / "rounds").glob("round-*.jsonl") for line in f.read_text().splitlines()
               for c in json.loads(line)["candidates"]}
    assert sources == {"policy", "teacher:builtin:gemma3-270m"}
    share_with_later_tests(converted)


def share_with_later_tests(converted: Path) -> None:
    """Later tests (test_gemma, the offline recipes, the main job) take this conversion from the suite's own cache
    instead of converting again; a cache that already holds one is left alone."""
    import shutil

    from filelock import FileLock

    from ail_trainer.cache import cache_dir, is_complete

    shared = cache_dir() / converted.name
    shared.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(shared) + ".lock"):
        if not is_complete(shared):
            tmp = shared.parent / f".{shared.name}.from-test"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(converted, tmp)
            if shared.exists():
                shutil.rmtree(shared)
            os.replace(tmp, shared)
