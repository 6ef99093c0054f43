"""First-use builds: one process builds under a file lock, the others wait on the file, never on a collective."""

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from ail_trainer.builtin import builtin_model_path
from ail_trainer.cache import COMPLETE, cache_dir, materialize


def _slow_build(tmp: Path, log: str) -> None:
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(1.0)  # long enough for the other process to arrive while this one builds
    (tmp / "weights.bin").write_text("built")


def _worker(target: str, log: str, results) -> None:
    path = materialize(Path(target), lambda tmp: _slow_build(tmp, log), spec={"v": 1})
    results.put((os.getpid(), (path / "weights.bin").read_text()))


def test_two_processes_build_once(tmp_path):
    target, log = tmp_path / "cache" / "model", tmp_path / "builds.log"
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(target), str(log), results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().split()) == 1  # built by exactly one process
    assert sorted(results.get(timeout=5)[1] for _ in procs) == ["built", "built"]
    assert json.loads((target / COMPLETE).read_text())["spec"] == {"v": 1}
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".model.")]  # no temporary left


def test_a_failed_build_leaves_nothing_and_the_next_call_builds(tmp_path):
    target = tmp_path / "model"

    def broken(tmp):
        (tmp / "half.bin").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        materialize(target, broken)
    assert not target.exists() and [p.name for p in tmp_path.iterdir()] == ["model.lock"]
    materialize(target, lambda tmp: (tmp / "ok.bin").write_text("ok"))
    assert (target / "ok.bin").read_text() == "ok"


def test_a_changed_spec_rebuilds(tmp_path):
    target = tmp_path / "model"
    materialize(target, lambda tmp: (tmp / "v").write_text("1"), spec={"v": 1})
    assert materialize(target, lambda tmp: (tmp / "v").write_text("2"), spec={"v": 1}).joinpath("v").read_text() == "1"
    assert materialize(target, lambda tmp: (tmp / "v").write_text("2"), spec={"v": 2}).joinpath("v").read_text() == "2"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AIL_CACHE", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("AIL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "ail-trainer"


def test_the_builtin_model_ships_with_the_package_and_is_not_built(monkeypatch, tmp_path):
    monkeypatch.setenv("AIL_CACHE", str(tmp_path / "empty"))
    path = Path(builtin_model_path())
    assert path.is_relative_to(Path(__import__("ail_trainer").__file__).parent)
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= {p.name for p in path.iterdir()}
    assert not (tmp_path / "empty").exists()
