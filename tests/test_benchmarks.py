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


@pytest.mark.parametrize("script, check", [
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


def test_readme_results_are_the_benchmark_summary(monkeypatch, tmp_path):
    """The README's results table is generated from the committed summary, so its figures cannot drift."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import docs_tables

    begin, end = docs_tables.README_MARKERS
    readme = (ROOT / "README.md").read_text()
    assert readme.count(begin) == 1 and readme.count(end) == 1
    block = readme.split(begin)[1].split(end)[0].strip()
    assert block == docs_tables.readme_table(), "stale README results: run python scripts/docs_tables.py readme"
    summary = json.loads((ROOT / "benchmarks" / "results" / "shared-pool" / "shared_pool.json").read_text())
    for name in ("mtld_k8_p1.0", "passive_p1.0"):  # every figure comes from the summary
        pct, low, high = summary["conditions"][name]["vs_base"]["mtld"]["pooled"]
        assert f"{pct:+.1f}% [{low:+.1f}, {high:+.1f}]" in block
    stale = tmp_path / "README.md"
    stale.write_text(f"intro\n{begin}\n| old |\n{end}\nrest\n")
    assert docs_tables.write_readme(stale) and not docs_tables.write_readme(stale)
    assert stale.read_text() == f"intro\n{begin}\n{docs_tables.readme_table()}\n{end}\nrest\n"
