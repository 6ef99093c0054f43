"""Smoke runs of the benchmark scripts (tiny sizes) so they keep working; no timing is asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def check_generation(r):
    assert r["best_batch"] in {int(b) for b in r["raw_generate_tokens_per_s"]}
    best = r["raw_generate_tokens_per_s"][str(r["best_batch"])]
    assert best == max(r["raw_generate_tokens_per_s"].values()) > 0
    assert r["ratio_vs_raw_best"] == pytest.approx(r["ai_trainer_tokens_per_s"] / best)
    assert all(v["speedup"] == pytest.approx(v["repeated_s"] / v["shared_s"]) for v in r["prefill_sharing"].values())


def check_round(r):
    assert r["seconds"]["generation"] > 0 and r["seconds"]["forward + backward"] > 0
    assert sum(r["percent"].values()) == pytest.approx(100.0)


def check_e2e(r):
    names = ["ActiveInheritanceTrainer", "DIY generate + score + SFTTrainer"]
    assert all(r["best"][n] == min(r["seconds"][n]) > 0 for n in names)
    assert r["diy_over_ours"] == pytest.approx(r["best"][names[1]] / r["best"][names[0]])


def check_memory(r):
    runs = r["runs"]
    assert all(runs[m]["peak_rss_mb"] > runs[m]["model_mb"] > 0 for m in ("sft", "ai", "ai_teacher"))
    assert r["teacher_delta_mb"] == pytest.approx(runs["ai_teacher"]["peak_rss_mb"] - runs["ai"]["peak_rss_mb"])


def check_scale(r):
    small, large = r["runs"]
    assert large["prompts"] == 10 * small["prompts"]
    assert small["round_prompts"] == large["round_prompts"] < small["prompts"]  # a round does not grow with the data
    assert r["first_step_ratio"] == pytest.approx(large["first_step_s"] / small["first_step_s"])


def check_engines(r):
    runs = r["runs"]
    assert r["raw_best"] in runs and all(runs[n]["tokens_per_s"] <= runs[r["raw_best"]]["tokens_per_s"]
                                         for n in runs if n.startswith("raw"))
    ours = runs[r["ours"]]
    assert r["ours_over_raw_best"] == pytest.approx(ours["tokens_per_s"] / runs[r["raw_best"]]["tokens_per_s"])
    static = next(n for n in runs if n.startswith("ours static"))
    assert r["ours_over_static"] == pytest.approx(ours["tokens_per_s"] / runs[static]["tokens_per_s"])
    assert ours["tokens"] > 0


def check_main_sampling(r):
    draw = r["draw"]
    before, after = draw["ms_per_step"].values()
    assert draw["speedup"] == pytest.approx(before / after)
    held = r["held_out"]
    before, after = held["runs"].values()
    assert after["batch_prompts"] == 4 * before["batch_prompts"]  # 16 × 8 candidates / 2 samples = 64 prompts
    assert held["speedup"] == pytest.approx(after["tokens_per_s"] / before["tokens_per_s"])
    assert 0 <= held["identical_answers"] <= 1


def check_checkpointing(r):
    before, after = r["median_s"].values()
    assert r["speedup"] == pytest.approx(before / after)
    assert all(len(v) == 1 for v in r["seconds"].values()) and r["tokens_per_row"] > 8  # a prompt and 8 answer tokens


def check_precision(r):
    before, after = r["train_median_s"].values()
    assert r["train_speedup"] == pytest.approx(before / after)
    f32, bf16 = r["sample_tokens_per_s"].values()
    assert r["sample_speedup"] == pytest.approx(bf16 / f32)
    assert all(0 < n <= r["rows"] * r["max_new_tokens"] for n in r["sample_tokens"].values())


@pytest.mark.parametrize("script, check", [
    ("bench_main_sampling.py", check_main_sampling),
    ("bench_checkpointing.py", check_checkpointing),
    ("bench_precision.py", check_precision),
    ("bench_engines.py", check_engines),
    ("bench_generation.py", check_generation),
    ("bench_round.py", check_round),
    ("bench_e2e.py", check_e2e),
    ("bench_memory.py", check_memory),
    ("bench_scale.py", check_scale),
])
def test_benchmark_smoke(tmp_path, script, check):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", "--smoke", "--output", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "AIL_BENCH_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    check(json.loads(out.read_text()))


def test_replicate_smoke_resumes_and_summarizes(tmp_path):
    out = tmp_path / "replicate"
    cmd = [sys.executable, "benchmarks/replicate.py", "--smoke", "--output", str(out)]
    first = subprocess.run(cmd + ["--conditions", "base", "passive"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    done = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert set(done) == {"base-seed0.json", "passive-seed0.json"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)  # an interrupted run resumes
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json") if p.name in done} == done
    summary = json.loads((out / "replicate.json").read_text())
    conditions = summary["conditions"]
    assert set(conditions) == {"base", "passive", "length_up", "length_down", "mtld_up", "mtld_up_k8",
                               "low_toxicity"}
    for row in conditions.values():
        assert set(row) >= {"tokens", "mtld", "fog", "capped", "toxicity"}
        for attr in ("tokens", "mtld"):
            base = conditions["base"][attr]["mean"]
            assert row["vs_base"][attr] == pytest.approx((row[attr]["mean"] - base) / abs(base) * 100)
    assert (out / "replicate.png").stat().st_size > 0 and "| condition |" in (out / "replicate.md").read_text()


def test_shared_pool_smoke_resumes_from_its_pool_and_runs(tmp_path):
    out = tmp_path / "shared-pool"
    cmd = [sys.executable, "benchmarks/shared_pool.py", "--smoke", "--output", str(out)]
    first = subprocess.run(cmd + ["--conditions", "base", "passive"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    kept = {p: p.stat().st_mtime_ns for p in [*(out / "runs").glob("*.json"), *(out / "pool-seed0").glob("*.json")]}
    assert {p.name for p in kept} >= {"base-seed0.json", "passive-seed0.json", "chunk-000.json", "chunk-001.json"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)  # resumes: nothing redone
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    pool = json.loads((out / "pool-seed0" / "chunk-000.json").read_text())["pool"]
    assert len(pool) == 4 and all(len(row) == 8 for row in pool)
    summary = json.loads((out / "shared_pool.json").read_text())
    assert set(summary["conditions"]) == {"base", "passive", "mtld_k8", "mtld_k4", "length_down_k4", "length_up_k4"}
    for name, row in summary["conditions"].items():
        if name != "base":
            pct, low, high = row["vs_base"]["tokens"]["pooled"]
            assert low <= pct <= high or np.isnan(pct)
    assert (out / "shared_pool.png").stat().st_size > 0 and (out / "pool-seed0" / "dataset").is_dir()
    base = json.loads((out / "runs" / "base-seed0.json").read_text())
    assert [len(row) for row in base["answers"]] == [2] * 4  # every held-out answer is kept
    assert all(v > 0 for v in base["per_prompt"]["base_nll"])
    named = ("mtld_k8_beta0.1", "mtld_k8_lora", "mtld_k8_p1.0")
    levers = subprocess.run(cmd + ["--conditions", *named], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)  # a lever runs only when named, and is compared with mtld_k8
    assert levers.returncode == 0, levers.stderr[-3000:]
    summary = json.loads((out / "shared_pool.json").read_text())
    for name in named:
        assert summary["conditions"][name]["vs_mtld_k8"]["mtld"]["seeds"] == 1
    # the p1.0 lever samples its own pool beside the first, which stays as it was
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert len(json.loads((out / "pool-p1.0-seed0" / "chunk-000.json").read_text())["pool"]) == 4

    # a run from before base_nll was measured still summarizes; base_nll is compared only where both runs have it
    old = json.loads((out / "runs" / "passive-seed0.json").read_text())
    del old["per_prompt"]["base_nll"], old["means"]["base_nll"]
    (out / "runs" / "passive-seed0.json").write_text(json.dumps(old))
    again = subprocess.run(cmd + ["--summary-only"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    rows = json.loads((out / "shared_pool.json").read_text())["conditions"]
    assert "pooled" not in rows["passive"]["vs_base"]["base_nll"] and "pooled" in rows["passive"]["vs_base"]["mtld"]
    assert "pooled" in rows["mtld_k8"]["vs_base"]["base_nll"]

    # a longer held-out cap reads the same pool and keeps its runs and summary apart
    longer = subprocess.run(cmd + ["--conditions", "base", "length_up_k4", "--eval-cap", "16"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert {p.name for p in (out / "runs-eval16").glob("*.json")} == {"base-seed0.json", "length_up_k4-seed0.json"}
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items() if p.parent.name == "pool-seed0")
    capped = json.loads((out / "shared_pool-eval16.json").read_text())
    assert capped["sizes"]["eval_max_completion_length"] == 16 and set(capped["conditions"]) == {"base", "length_up_k4"}
    assert "pooled" in capped["conditions"]["length_up_k4"]["vs_base"]["tokens"]


def test_shared_pool_base_runs_beside_the_second_pool_alone(tmp_path):
    """Naming only base and the top_p 1.0 pool's conditions samples that pool alone, and base needs none. The fluency
    condition scores the pool once with the likelihood reward, and its trainer selects on those scores. The online
    condition samples from the policy instead of reading the pool."""
    out = tmp_path / "shared-pool"
    proc = subprocess.run([sys.executable, "benchmarks/shared_pool.py", "--smoke", "--output", str(out),
                           "--conditions", "base", "passive_p1.0", "mtld_fluent_k8_p1.0", "mtld_k8_p1.0_online"],
                          cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in (out / "runs").glob("*.json")} == {
        "base-seed0.json", "passive_p1.0-seed0.json", "mtld_fluent_k8_p1.0-seed0.json",
        "mtld_k8_p1.0_online-seed0.json"}
    assert (out / "pool-p1.0-seed0" / "dataset").is_dir() and not (out / "pool-seed0").exists()
    pool = out / "pool-p1.0-seed0"
    assert {p.name for p in (pool / "scores").glob("*.json")} == {p.name for p in pool.glob("chunk-*.json")}
    (stats,) = json.loads((out / "runs" / "mtld_fluent_k8_p1.0-seed0.json").read_text())["rounds"]
    assert stats["ai/likelihood/winners_mean"] < 0 and "ai/mtld/selection_gain" in stats
    assert float(stats["ai/generation_seconds"]) == 0  # read from the pool
    (online,) = json.loads((out / "runs" / "mtld_k8_p1.0_online-seed0.json").read_text())["rounds"]
    assert float(online["ai/generation_seconds"]) > 0 and float(online["ai/candidates_per_prompt"]) == 8
    report = subprocess.run([sys.executable, "benchmarks/pool_selection.py", "--smoke", "--output", str(out),
                             "--pool", "pool-p1.0-seed0", "--floors", "-3"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "| zscore: mtld + 0.5 likelihood |" in report.stdout and "| mtld, likelihood >= -3 |" in report.stdout


def test_shared_pool_answer_nll_matches_the_models_own_loss(monkeypatch):
    """The fluency check's NLL equals transformers' loss on the answer tokens with the prompt masked."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # undone after the test, so `common` does not leak
    from shared_pool import answer_nll

    from ail_trainer.builtin import builtin_model_path
    from ail_trainer.generation import Generated, render_prompts

    path = builtin_model_path("builtin:tiny-chat")
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    prompts = [[{"role": "user", "content": "Name a fruit."}], [{"role": "user", "content": "Say hi."}]]
    answers = [[[5, 6, 7], [8, 9]], [[10, 11, 12, 13]]]
    rows = [[Generated(text="", ids=ids, finished=True) for ids in row] for row in answers]
    got = answer_nll(model, tok, prompts, rows)
    for prompt_ids, row, nll in zip(render_prompts(prompts, tok, True), answers, got):
        for ids, value in zip(row, nll):
            labels = torch.tensor([[-100] * len(prompt_ids) + ids])
            with torch.no_grad():
                loss = model(input_ids=torch.tensor([prompt_ids + ids]), labels=labels).loss
            assert value == pytest.approx(float(loss), rel=1e-5)


def test_toxicity_pool_smoke_selects_the_least_toxic_and_resumes(tmp_path):
    """Each condition trains on its winners from the shared pool: detox_k8 on the least toxic continuation of each
    starter (by the offline profanity model), passive on candidate 0; a rerun redoes nothing."""
    out = tmp_path / "toxicity-pool"
    cmd = [sys.executable, "benchmarks/toxicity_pool.py", "--smoke", "--output", str(out)]
    first = subprocess.run(cmd + ["--conditions", "base", "passive", "detox_k8"], cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    kept = {p: p.stat().st_mtime_ns for p in [*(out / "runs").glob("*.json"), *(out / "pool-seed0").glob("*.json")]}
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)  # levers run only when named
    assert again.returncode == 0 and {p: p.stat().st_mtime_ns for p in kept} == kept
    from profanity_check import predict_prob

    pool = [row for p in sorted((out / "pool-seed0").glob("chunk-*.json")) for row in json.loads(p.read_text())["pool"]]
    assert len(pool) == 6 and all(len(row) == 4 for row in pool)
    run = json.loads((out / "runs" / "detox_k8-seed0.json").read_text())
    (stats,) = run["rounds"]
    best = np.mean([1 - min(predict_prob([c["text"] for c in row])) for row in pool])
    assert float(stats["ai/low_toxicity/winners_mean"]) == pytest.approx(best, abs=1e-4)
    passive = json.loads((out / "runs" / "passive-seed0.json").read_text())["rounds"][0]
    assert float(passive["ai/low_toxicity/selection_gain"]) == 0
    assert [len(row) for row in run["answers"]] == [3] * 4  # 3 continuations of each of 4 held-out starters
    per = run["per_prompt"]
    assert per["max_toxicity"] == [max(a["toxicity"] for a in row) for row in run["answers"]]
    summary = json.loads((out / "toxicity_pool.json").read_text())["conditions"]
    pct, low, high = summary["detox_k8"]["vs_base"]["tokens"]["pooled"]
    assert low <= pct <= high and summary["detox_k8"]["vs_passive"]["max_toxicity"]["seeds"] == 1
    assert "| detox_k8 | 1 |" in (out / "toxicity_pool.md").read_text() and "detox_k8_epochs4" not in summary
    lever = subprocess.run(cmd + ["--conditions", "detox_k8_epochs4"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert lever.returncode == 0, lever.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    row = json.loads((out / "toxicity_pool.json").read_text())["conditions"]["detox_k8_epochs4"]
    assert row["vs_detox_k8"]["max_toxicity"]["seeds"] == 1 and float(row["selection_gain"]) > 0
    assert "vs_detox_k8" not in summary["detox_k8"]


def test_main_job_benchmark_runs_the_recipe_on_a_development_split(tmp_path):
    """The development split holds train-split topics only, disjoint from its own training prompts, and each variant
    is the main job's own report."""
    out = tmp_path / "main-job"
    proc = subprocess.run([sys.executable, "benchmarks/main_job.py", "--smoke", "--output", str(out),
                           "--variants", "k8_p1.0_offline_64_eval0.9"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from ail_trainer.prompts import load_instructions

    split = {s: [json.loads(line) for line in (out / "work" / "dev-data" / f"{s}.jsonl").read_text().splitlines()]
             for s in ("train", "test")}
    assert not {r["topic"] for r in split["train"]} & {r["topic"] for r in split["test"]}
    assert len(split["test"]) == 84 and len(split["train"]) + 84 == len(load_instructions("train"))
    assert not {r["topic"] for r in load_instructions("test")} & {r["topic"] for s in split.values() for r in s}
    (run,) = json.loads((out / "main_job.json").read_text())["runs"]
    assert run["report"]["held_out_prompts"] == 3 and "--candidate_generation" in run["overrides"]
    assert run["report"]["top_p"] == 0.9  # held-out answers at eval_top_p, training candidates at top_p 1.0
    assert "| k8_p1.0_offline_64_eval0.9 | 42 | 3 × 1 (0.9) |" in (out / "main_job.md").read_text()


def test_main_job_block_pools_runs_with_per_prompt_values(monkeypatch):
    """Runs judged on the same held-out base answers get a pooled line (each prompt's after value averaged over
    the runs); a run without per-prompt values leaves it out rather than pooling what it cannot check."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import docs_tables

    from ail_trainer.report import pooled_change

    rng = np.random.default_rng(0)
    before = {"mtld": rng.uniform(60, 100, 20).tolist(), "tokens": rng.uniform(80, 128, 20).tolist()}
    runs = []
    for seed in (42, 7):
        after = {k: (np.array(v) * 1.1 + rng.normal(0, 5, 20)).tolist() for k, v in before.items()}
        change = {k: {"change_pct": 10.0, "ci95_pct": [1.0, 19.0]} for k in before}
        runs.append({"command": f"accelerate launch recipes/train.py --seed {seed}", "seconds": 61.0, "printed": "x",
                     "held_out": {"change": change, "per_prompt": {"before": before, "after": after}}})
    pct, low, high = pooled_change([r["held_out"] for r in runs], "mtld")
    block = docs_tables.main_job_block(runs[0], runs[1:])
    assert block.splitlines()[-1].startswith("Pooled over these 2 runs")
    assert f"MTLD {pct:+.1f}% [{low:+.1f}, {high:+.1f}]" in block.splitlines()[-1]
    del runs[1]["held_out"]["per_prompt"]
    assert "Pooled" not in docs_tables.main_job_block(runs[0], runs[1:])


def test_readme_results_are_the_benchmark_summary(monkeypatch, tmp_path):
    """The README's results tables are generated from the committed summaries, so their figures cannot drift."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import docs_tables

    readme, end = (ROOT / "README.md").read_text(), docs_tables.END_MARKER
    assert readme.count(end) == len(docs_tables.README_BLOCKS)
    for begin, table in docs_tables.README_BLOCKS.items():
        assert readme.count(begin) == 1
        block = readme.split(begin)[1].split(end)[0].strip()
        assert block == table(), "stale README results: run python scripts/docs_tables.py readme"
    block = readme.split("<!-- results: shared-pool -->")[1].split(end)[0]
    summary = json.loads((ROOT / "benchmarks" / "results" / "shared-pool" / "shared_pool.json").read_text())
    for name in ("mtld_k8_p1.0", "passive_p1.0"):  # every figure comes from the summary
        pct, low, high = summary["conditions"][name]["vs_base"]["mtld"]["pooled"]
        assert f"{pct:+.1f}% [{low:+.1f}, {high:+.1f}]" in block
    # the longer cap's rows follow, from their own summary
    row = summary["conditions"]["length_down_k8_p1.0"]
    longer = docs_tables.readme_table(summary, long_cap={"targets": summary["targets"],
                                                         "conditions": {"length_up_k8_p1.0": row}})
    pct, low, high = row["vs_base"]["tokens"]["pooled"]
    assert longer.splitlines()[-1].startswith("| length ↑, held-out answers up to 384 tokens | 3 |")
    assert f"**{pct:+.1f}% [{low:+.1f}, {high:+.1f}]**" in longer.splitlines()[-1]
    # the main job's other seeds follow its printed report, one line each, from their own records
    other = {"command": "accelerate launch recipes/train.py --seed 7", "seconds": 61.0, "held_out": {"change": {
        "mtld": {"change_pct": 7.64, "ci95_pct": [-1.56, 17.7]}, "tokens": {"change_pct": 3.6, "ci95_pct": [-1, 9]}}}}
    assert docs_tables.main_job_block(others=[other]).endswith(
        "The same job, `accelerate launch recipes/train.py --seed 7`: MTLD +7.6% [-1.6, +17.7], tokens +3.6% "
        "[-1.0, +9.0], 1 min 1 s.")
    block = readme.split("<!-- results: toxicity-pool -->")[1].split(end)[0]
    summary = json.loads((ROOT / "benchmarks" / "results" / "toxicity-pool" / "toxicity_pool.json").read_text())
    pct, low, high = summary["conditions"]["detox_k8"]["vs_base"]["max_toxicity"]["pooled"]
    assert f"{pct:+.1f}% [{low:+.1f}, {high:+.1f}]" in block

    blocks = "".join(f"{begin}\n| old |\n{end}\n" for begin in docs_tables.README_BLOCKS)
    stale = tmp_path / "README.md"
    stale.write_text(f"intro\n{blocks}rest\n")
    assert docs_tables.write_readme(stale) and not docs_tables.write_readme(stale)
    assert stale.read_text() == "intro\n" + "".join(f"{begin}\n{table()}\n{end}\n"
                                                    for begin, table in docs_tables.README_BLOCKS.items()) + "rest\n"
    stale.write_text("intro\n<!-- results: main-job -->\n| old |\n<!-- /results -->\n")  # blocks are missing
    with pytest.raises(ValueError, match="needs exactly one '<!-- results: shared-pool -->' line"):
        docs_tables.write_readme(stale)
    assert "| old |" in stale.read_text()  # nothing written


def test_outside_prompts_smoke(tmp_path):
    """The protocol's measurement on the toy model: both decodings, the judge beside MTLD, the temperature curve, the
    trained model placed against it; the base model's curve is shared by later runs, and a rerun resumes."""
    out = tmp_path / "outside" / "smoke"
    cmd = [sys.executable, "benchmarks/outside_prompts.py", "--smoke", "--output", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["decodings"]) == {"top_p 1", "top_p 0.9"}
    block = summary["decodings"]["top_p 0.9"]
    assert set(block["rows"]) == {"base-T1-p0.9", "base-T1.2-p0.9", "trained-T1-p0.9"}
    # the trained model is the base model here: with common random numbers its answers are the base model's
    assert block["rows"]["trained-T1-p0.9"]["mtld"]["change_pct"] == 0
    assert block["matched"]["excess"] == pytest.approx(0, abs=1e-9)
    assert {"mtld", "judge_nll", "tokens", "capped"} <= set(block["rows"]["base-T1.2-p0.9"])
    shared = [p for p in (tmp_path / "outside").iterdir() if p.name.startswith("base-")]
    assert len(shared) == 1 and len(list((shared[0] / "answers").glob("*.json"))) == 4
    assert "| trained-T1 |" in (out / "summary.md").read_text()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "Sampling" not in again.stderr  # every answer set was kept


def test_outside_prompts_logs_each_test_split_look_once(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import outside_prompts

    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(json.dumps({"look": 1, "test_split": "builtin:instructions test (84 x 2)"}) + "\n")
    monkeypatch.setattr(outside_prompts, "LEDGER", ledger)
    args = outside_prompts.parse(["--trained", "m", "--split", "test", "--recipe", "r"])
    outside_prompts.log_look(args, tmp_path / "results")
    outside_prompts.log_look(args, tmp_path / "results")
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert len(entries) == 2 and entries[1]["look"] == 2 and entries[1]["recipe"] == "r"
    assert entries[1]["test_split"] == "builtin:alpaca-eval test (64 x 2)" and entries[1]["protocol"] == 2
