"""recipes/train.py: every offline recipe runs, and bad input fails early with a clear error."""

import json
import sys
from pathlib import Path

import pytest

from ail_trainer.config import cpu_computes_bf16
from ail_trainer.scripts.train import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--max_steps", "1", "--num_candidates", "2", "--max_completion_length", "8", "--eval_max_prompts", "4",
        "--disable_tqdm", "true"]


@pytest.mark.parametrize("recipe", sorted(p.name for p in (ROOT / "recipes" / "offline").glob("*.yaml")
                                           if p.name != "ddp_tiny.yaml"))  # multi-process: test_distributed
def test_offline_recipes_run(recipe, tmp_path, capsys):
    out = tmp_path / "out"
    trainer = main(["--config", str(ROOT / "recipes" / "offline" / recipe), "--output_dir", str(out), *FAST])
    assert trainer.state.global_step == 1
    for name in ("model.safetensors", "tokenizer.json", "README.md", "active_inheritance.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "active_inheritance.json").read_text())
    assert summary["num_candidates"] == 2 and summary["rounds"]
    assert list((out / "rounds").glob("round-*.jsonl"))
    assert "before" in capsys.readouterr().out


def test_held_out_report_samples_at_eval_top_p(tmp_path, capsys):
    """`eval_top_p` changes only the held-out sampling, for both models, and the report says so."""
    out = tmp_path / "out"
    main(["--config", str(ROOT / "recipes" / "offline" / "tiny.yaml"), "--output_dir", str(out), *FAST,
          "--eval_top_p", "0.5"])
    assert json.loads((out / "active_inheritance.json").read_text())["held_out"]["top_p"] == 0.5
    printed = capsys.readouterr().out
    assert "Held-out prompts: 4, 2 samples each (top_p 0.5); " in printed


def test_held_out_report_with_common_random_numbers(tmp_path, capsys):
    """`eval_coupled` samples both models' held-out answers from the same per-sample streams: the header says so, the
    card records it with each metric's per-prompt values, and the base model's answers are the same in two runs
    whatever the global seed."""
    cards = []
    for seed in (1, 2):
        out = tmp_path / f"out{seed}"
        main(["--config", str(ROOT / "recipes" / "offline" / "tiny.yaml"), "--output_dir", str(out), *FAST,
              "--eval_coupled", "true", "--seed", str(seed)])
        cards.append(json.loads((out / "active_inheritance.json").read_text())["held_out"])
    assert "Held-out prompts: 4, 2 samples each, common random numbers; " in capsys.readouterr().out
    assert all(card["coupled"] for card in cards)
    per_prompt = [card["per_prompt"] for card in cards]
    assert per_prompt[0]["before"] == per_prompt[1]["before"] and len(per_prompt[0]["before"]["mtld"]) == 4
    assert set(per_prompt[0]["after"]) == {"tokens", "capped", "mtld"}


def test_held_out_report_with_judges_that_did_not_select(tmp_path, capsys, tiny_path):
    """`eval_judges` scores both models' held-out answers with the fluency judge (here the toy model's NLL) and
    ToxBlock, beside the rewards, in the table and the card."""
    out = tmp_path / "out"
    main(["--config", str(ROOT / "recipes" / "offline" / "tiny.yaml"), "--output_dir", str(out), *FAST,
          "--eval_judges", f"fluency={tiny_path}", "toxblock"])
    held_out = json.loads((out / "active_inheritance.json").read_text())["held_out"]
    assert {"mtld", "judge_nll", "toxblock"} <= set(held_out["before"]) == set(held_out["after"])
    assert held_out["before"]["judge_nll"] > 0 and 0 <= held_out["before"]["toxblock"] <= 1
    printed = capsys.readouterr().out
    assert "judge_nll" in printed and "toxblock" in printed


def test_training_on_a_real_prompt_set(tmp_path):
    """`builtin:sharegpt` trains (its first human turns as one user turn) and `builtin:alpaca-eval`'s dev split is
    the held-out report's prompts."""
    out = tmp_path / "out"
    trainer = main(["--config", str(ROOT / "recipes" / "offline" / "tiny.yaml"), "--output_dir", str(out), *FAST,
                    "--dataset_name", "builtin:sharegpt", "--eval_dataset_name", "builtin:alpaca-eval",
                    "--eval_split", "dev", "--train_max_prompts", "8"])
    assert trainer.state.global_step == 1
    held_out = json.loads((out / "active_inheritance.json").read_text())["held_out"]
    assert held_out["held_out_prompts"] == 4
    rows = [json.loads(line) for line in next((out / "rounds").glob("round-*.jsonl")).read_text().splitlines()]
    assert rows and all(isinstance(r["prompt"], list) and r["prompt"][-1]["role"] == "user" for r in rows)


def test_every_real_recipe_parses():
    from ail_trainer.scripts.train import check_config_keys

    for recipe in (ROOT / "recipes").glob("*.yaml"):
        check_config_keys(str(recipe))


def test_local_jsonl_dataset_and_cli_reward_options(tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"Tell me about item {i}.", "completion": " It is fine."})
                              for i in range(8)))
    trainer = main(["--config", str(ROOT / "recipes" / "offline" / "tiny.yaml"), "--dataset_name",
                    str(data), "--reward_funcs", "length:unit=words", "mtld", "--output_dir", str(tmp_path / "o"),
                    "--eval_split", "none", *FAST])
    assert trainer.reward_names == ["length", "mtld"] and trainer.reward_funcs[0].unit == "words"


def test_main_job_command_runs_as_documented(tmp_path):
    """The README's main job exactly: `accelerate launch recipes/train.py`, no arguments, as a real script."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", str(ROOT / "recipes" / "train.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "metric (held-out samples)" in proc.stdout and "mtld" in proc.stdout
    assert proc.stdout.count("Prompt: ") == 2 and "  before: " in proc.stdout and "  after:  " in proc.stdout
    out = tmp_path / "outputs" / "offline-lexical-diversity"
    assert (out / "model.safetensors").exists() and len(list((out / "rounds").glob("round-*.jsonl"))) == 1
    summary = json.loads((out / "active_inheritance.json").read_text())
    assert summary["base_model"].endswith("smollm2-135m-instruct-fp32")
    held_out = summary["held_out"]
    assert held_out["held_out_prompts"] == 84 and held_out["samples_per_prompt"] == 2
    # the recipe trains and samples candidates in bf16 where the CPU has bf16 instructions, else in float32
    assert summary["mixed_precision"] == ("bf16" if cpu_computes_bf16() else "no")
    assert held_out["mixed_precision"] == "no" and "autocast" not in proc.stdout  # and measures in float32
    assert {"mtld", "tokens", "capped"} <= set(held_out["before"]) and "Epoch 1: training on round 0's" in proc.stderr
    assert summary["candidate_generation"] == "offline" and summary["num_candidates"] == 8
    assert all(r["ai/mtld/selection_gain"] > 0 for r in summary["rounds"])  # selection picked more diverse answers


def test_arguments_without_a_config_override_the_main_job(tmp_path):
    """`ail-train --seed 7` is the main job with seed 7, not TRL's bare defaults."""
    out = tmp_path / "out"
    trainer = main(["--model_name_or_path", "builtin:tiny-chat", "--output_dir", str(out), "--seed", "7", *FAST])
    summary = json.loads((out / "active_inheritance.json").read_text())
    assert summary["candidate_generation"] == "offline" and trainer.reward_names == ["mtld"]
    assert trainer.args.seed == 7 and trainer.args.top_p == 1.0 and len(trainer.train_dataset) == 64


def test_help_lists_every_field(capsys):
    """argparse formats every help string with %: a bare % in a field's help breaks `--help`."""
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0 and "--top_p" in capsys.readouterr().out


def test_recipe_scripts_do_not_shadow_the_standard_library():
    stdlib = set(sys.stdlib_module_names)
    assert not [p.stem for p in (ROOT / "recipes").glob("*.py") if p.stem in stdlib]


# What a run may print: progress bars, the run's own lines, the trainer's metric lines and the before/after report.
EXPECTED_LINES = [
    r"^\s*$", r"\d+%\|", r"(it/s|s/it)\]",  # progress bars, and tqdm's line clearing
    r"^Converting .+, once \(",  # a built-in model's first use
    r"^Round \d+: \d+ prompts; ", r"^winner \(", r"^Epoch \d+: training on round 0's winners again",
    r"^\{'(loss|train_runtime)': ",  # Trainer's metric lines
    r"^Held-out prompts: ", r"^metric \(held-out samples\)",
    r"^[\w/]+\s+-?[\d.e+-]+\s+-?[\d.e+-]+\s+[+-]?(nan|[\d.]+)%\s+\[[^]]+\]$", r"^Prompt: ", r"^before:", r"^after:",
    r'^\{"before": ',
    # On a CPU, Accelerate notes the thread count it chose; `--num_cpu_threads_per_process N` or OMP_NUM_THREADS
    # silences it (documented in the quickstart).
    r"^The following values were not passed to `accelerate launch`", r"^`--num_cpu_threads_per_process` was set",
    r"^To avoid this warning pass in values",
]


def test_the_main_jobs_log_holds_only_what_a_user_needs(tmp_path):
    """The toy variant through `accelerate launch`, as after scripts/install.sh (which writes Accelerate's default
    config): no deprecation warning, no DeepSpeed line, no progress bar of the placeholder dataset."""
    import os
    import re
    import subprocess

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    subprocess.run([sys.executable, "-m", "accelerate.commands.accelerate_cli", "config", "default"], env=env,
                   check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", str(ROOT / "recipes" / "train.py"),
                           "--config", "tiny", "--max_steps", "2", "--eval_max_prompts", "4"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).strip()
             for line in re.split(r"[\r\n]", proc.stdout + proc.stderr)]
    unexpected = [line for line in lines if not any(re.search(p, line) for p in EXPECTED_LINES)]
    assert not unexpected, "unexpected log lines:\n" + "\n".join(unexpected[:20])
    assert any(line.startswith("Round 0: ") for line in lines) and any("Held-out prompts" in line for line in lines)
