"""Teachers behind an OpenAI-compatible endpoint, against a real `transformers serve` started on 127.0.0.1."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.builtin import builtin_model_path
from ail_trainer.prompts import as_chat, load_instructions
from ail_trainer.records import read_round

KEY = "sk-ail-test-4f1e9c0b7d2a"  # must never appear in any output
TINY = builtin_model_path("builtin:tiny-chat")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`transformers serve` with the built-in tiny chat model, on a free local port."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cli = Path(sys.executable).parent / "transformers"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf")}
        self.log = open(tmp / f"serve-{self.port}.log", "w")
        self.proc = subprocess.Popen([str(cli), "serve", TINY, "--host", "127.0.0.1", "--port", str(self.port),
                                      "--device", "cpu", "--dtype", "float32"], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 180
        while time.time() < deadline:
            assert self.proc.poll() is None, (tmp / f"serve-{self.port}.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2)
                return
            except OSError:
                time.sleep(1)
        raise TimeoutError("transformers serve did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("serve"))
    yield srv
    srv.stop()


@pytest.fixture
def chat_policy():
    from ail_trainer.testing import load

    return load(TINY)


def chat_data(n: int):
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [as_chat(r["prompt"]) for r in load_instructions("train")[:n]]})


def count_e(completions, **kwargs):
    return [float(c[0]["content"].count("e")) for c in completions]


def test_endpoint_teacher_trains_and_never_writes_the_key(server, chat_policy, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("AIL_TEST_KEY", KEY)
    model, tok = chat_policy
    teacher = {"base_url": server.url, "model": TINY, "api_key_env": "AIL_TEST_KEY", "max_concurrency": 4}
    args = ActiveInheritanceConfig(output_dir=str(tmp_path / "out"), num_candidates=2, teacher_num_candidates=3,
                                   max_completion_length=8, per_device_train_batch_size=4, max_steps=1,
                                   report_to=[], save_strategy="no", bf16=False, use_cpu=True, logging_steps=1)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=chat_data(4), processing_class=tok,
                                       reward_funcs=[count_e], teachers=[teacher])
    assert trainer.endpoint_supports_n == {f"endpoint:{TINY}": False}  # transformers serve returns one choice
    trainer.train()
    trainer.save_model(args.output_dir)
    from ail_trainer.report import write_card

    write_card(trainer, args.output_dir, TINY, None)
    records = read_round(args.output_dir, 0)
    assert len(records) == 4
    for rec in records:
        served = [c for c in rec.candidates if c.source == f"endpoint:{TINY}"]
        assert len(served) == 3 and len([c for c in rec.candidates if c.source == "policy"]) == 2
        # token counts are the policy tokenizer's, whatever the server tokenized
        assert [c.num_tokens for c in served] == [len(tok(c.text, add_special_tokens=False)["input_ids"])
                                                  for c in served]
        assert rec.failures == []
    out = capfd.readouterr()
    files = [p for p in Path(args.output_dir).rglob("*") if p.is_file()]
    assert any(p.name == "active_inheritance.json" for p in files) and any(p.name == "training_args.bin"
                                                                           for p in files)
    leaks = [str(p) for p in files if KEY.encode() in p.read_bytes()]
    assert not leaks and KEY not in out.out + out.err


def test_failed_requests_are_recorded_and_the_round_goes_on(chat_policy, tmp_path, monkeypatch):
    srv = Server(tmp_path)
    model, tok = chat_policy
    teacher = {"base_url": srv.url, "model": TINY, "max_retries": 0, "timeout": 5}
    args = ActiveInheritanceConfig(output_dir=str(tmp_path / "out"), num_candidates=2, max_completion_length=8,
                                   per_device_train_batch_size=2, max_steps=1, report_to=[], save_strategy="no",
                                   bf16=False, use_cpu=True)
    trainer = ActiveInheritanceTrainer(model, args, train_dataset=chat_data(2), processing_class=tok,
                                       reward_funcs=[count_e], teachers=[teacher])
    srv.stop()  # the server goes away after the preflight: every request of the round fails
    trainer.train()
    assert trainer.state.global_step == 1
    for rec in read_round(args.output_dir, 0):
        assert {c.source for c in rec.candidates} == {"policy"} and not rec.dropped
        assert len(rec.failures) == 2  # k=2 requests, one sample each
        assert all(f["source"] == f"endpoint:{TINY}" and "Connection" in f["error"] for f in rec.failures)


def test_preflight_names_a_model_the_server_does_not_serve(server, chat_policy, tmp_path):
    model, tok = chat_policy
    args = ActiveInheritanceConfig(output_dir=str(tmp_path / "out"), bf16=False, use_cpu=True, report_to=[])
    with pytest.raises(ValueError, match="Check that `model` is the name the server serves"):
        ActiveInheritanceTrainer(model, args, train_dataset=chat_data(2), processing_class=tok,
                                 reward_funcs=[count_e], teachers=[{"base_url": server.url, "model": "nope/none"}])


def test_yaml_recipe_with_an_endpoint_teacher(server, tmp_path, monkeypatch, capfd):
    from ail_trainer.scripts.train import main

    monkeypatch.setenv("AIL_TEST_KEY", KEY)
    config = tmp_path / "endpoint.yaml"
    config.write_text(yaml.safe_dump({
        "model_name_or_path": "builtin:tiny-chat", "dataset_name": "builtin:instructions", "train_max_prompts": 4,
        "eval_split": None, "reward_funcs": ["mtld"], "output_dir": str(tmp_path / "run"), "num_candidates": 2,
        "max_completion_length": 8, "per_device_train_batch_size": 4, "max_steps": 1, "report_to": "none",
        "bf16": False, "use_cpu": True, "save_strategy": "no",
        "teachers": [{"base_url": server.url, "model": TINY, "api_key_env": "AIL_TEST_KEY"}],
    }))
    trainer = main(["--config", str(config)])
    assert {c.source for r in read_round(str(tmp_path / "run"), 0) for c in r.candidates} == \
        {"policy", f"endpoint:{TINY}"}
    assert trainer.teachers[0].api_key_env == "AIL_TEST_KEY"
    out = capfd.readouterr()
    leaks = [str(p) for p in (tmp_path / "run").rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert not leaks and KEY not in out.out + out.err
