"""The vLLM path against the real APIs: TRL's `VLLMGeneration` and `VLLMClient`, vLLM's `SamplingParams`,
`RequestOutput` and `CompletionRequest`; only `vllm.LLM` and the HTTP server are stand-ins (`fakes.py`).

Needs `vllm` installed beside the CPU torch: `bash scripts/vllm_contract.sh` builds that environment and runs this
folder. The main suite does not collect it (`norecursedirs`).
"""

from __future__ import annotations

import pytest
import torch
import trl.generation.vllm_generation as trl_vllm
from fakes import FakeLLM, FakeServer
from trl.generation.vllm_client import VLLMClient
from vllm import SamplingParams

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.prompts import prompt_dataset
from ail_trainer.records import read_round

K, CAP = 3, 12


def config(tmp_path, **kw) -> ActiveInheritanceConfig:
    base = dict(output_dir=str(tmp_path / "out"), use_vllm=True, num_candidates=K, max_completion_length=CAP,
                max_prompt_length=64, per_device_train_batch_size=4, generation_steps=1, max_steps=2,
                learning_rate=5e-3, report_to=[], save_strategy="no", bf16=False, use_cpu=True, seed=11,
                disable_tqdm=True, vllm_gpu_memory_utilization=0.2)
    base.update(kw)
    return ActiveInheritanceConfig(**base)


def trainer_for(tiny_path, args) -> ActiveInheritanceTrainer:
    return ActiveInheritanceTrainer(tiny_path, args, reward_funcs=["length"],
                                    train_dataset=prompt_dataset("train").select(range(8)))


def candidate_texts(out_dir, round_id: int) -> list[list[str]]:
    """A round's candidates as recorded (a round covers the 4 prompts of its step)."""
    return [[c.text for c in r.candidates] for r in read_round(str(out_dir), round_id)]


def same_weights(a: dict[str, torch.Tensor], model: torch.nn.Module) -> bool:
    return all(torch.equal(a[k], v) for k, v in model.state_dict().items())


@pytest.fixture
def fake_llm(monkeypatch):
    FakeLLM.instances.clear()
    monkeypatch.setattr(trl_vllm, "LLM", FakeLLM)
    return FakeLLM.instances


def test_colocate_rounds_through_trl_vllm_generation(tiny_path, tmp_path, fake_llm):
    trainer = trainer_for(tiny_path, config(tmp_path))
    llm = fake_llm[0]
    # 5: the context vLLM reserves is what a request can need; 6: max_num_seqs covers a round's batch
    assert llm.kwargs["max_model_len"] == 64 + CAP
    assert llm.kwargs["max_num_seqs"] == trainer.args.generation_batch_size * K
    trainer.train()
    eos = trainer.processing_class.eos_token_id
    requests = llm.sampler.requests
    assert requests and all(isinstance(p, SamplingParams) for p in requests)
    # 1: one seeded n=k request per prompt, so the k samples differ; 3: stop ids sent; 4: no log-probabilities
    assert all(p.n == K and p.seed is not None and p.max_tokens == CAP for p in requests)
    assert all(eos in p.stop_token_ids for p in requests) and all(p.logprobs is None for p in requests)
    assert len({p.seed for p in requests}) == len(requests)
    rows = candidate_texts(trainer.args.output_dir, 0)
    assert len(rows) == 4 and all(len(r) == K for r in rows)
    assert all(len(set(r)) > 1 for r in rows)  # different samples, not k copies
    # 7: every round samples the weights as trained so far, including after a second train()
    trained = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    before = len(requests)
    trainer.train()
    assert same_weights(llm.sampler.weights_seen[before], trainer.model) is False  # trained further since
    assert all(torch.equal(llm.sampler.weights_seen[before][k], trained[k]) for k in trained)


def test_colocate_same_seed_same_candidates_and_finished_at_a_disk_eos(tiny_path, tmp_path, fake_llm):
    firsts = []
    for run in range(2):
        trainer = trainer_for(tiny_path, config(tmp_path / str(run), max_steps=1))
        trainer.train()
        firsts.append(candidate_texts(trainer.args.output_dir, 0))
    assert firsts[0] == firsts[1]
    # 3: the policy in memory stops at another id; vLLM stopped at the EOS it read from disk: finished, not cut off
    sampler = fake_llm[-1].sampler
    sampler.disk_eos = set(range(0, 512, 3)) - trainer.sources[0].stop  # ids the policy in memory does not stop at
    rows = trainer.sources[0].candidates(5, [0, 1, 2, 3], [trainer.prompt_data.prompts[i] for i in range(4)])
    ended = [c for r in rows for c in r if len(c.ids) < CAP]
    assert ended and all(c.finished for c in ended)
    assert not all(c.finished for r in rows for c in r if len(c.ids) == CAP) or len(ended) == 4 * K


def test_generation_kwargs_reach_sampling_params_under_their_vllm_names(tiny_path, tmp_path, fake_llm):
    args = config(tmp_path, max_steps=1, generation_kwargs={"max_new_tokens": 6, "min_new_tokens": 2, "min_p": 0.05})
    trainer_for(tiny_path, args).train()
    params = fake_llm[0].sampler.requests[0]
    assert (params.max_tokens, params.min_tokens, params.min_p) == (6, 2, 0.05)


@pytest.fixture
def fake_server(tiny_path, monkeypatch):
    server = FakeServer(tiny_path)
    # the NCCL weight-update group needs CUDA: its two ends are replaced in-process
    monkeypatch.setattr(VLLMClient, "init_communicator", lambda self, device=0: None)
    monkeypatch.setattr(VLLMClient, "update_named_params",
                        lambda self, metadata, params: server.sampler.load_weights(params))
    yield server
    server.close()


def test_server_mode_through_trl_vllm_client(tiny_path, tmp_path, fake_server):
    trainer = trainer_for(tiny_path, config(tmp_path, vllm_mode="server", vllm_server_base_url=fake_server.url,
                                            vllm_server_timeout=10))
    trainer.train()
    bodies = fake_server.bodies
    assert len(bodies) == 2  # one request per round, every field known to vLLM's CompletionRequest
    assert all(b["n"] == K and b["max_tokens"] == CAP and b["logprobs"] is None and b["seed"] is not None
               for b in bodies)
    assert all(trainer.processing_class.eos_token_id in b["stop_token_ids"] for b in bodies)
    rows = candidate_texts(trainer.args.output_dir, 0)
    assert len(rows) == 4 and all(len(r) == K for r in rows)
    assert all(len(set(r)) > 1 for r in rows)
    assert fake_server.prefix_cache_resets == 2  # one weight sync per round
    assert same_weights(fake_server.sampler.weights_seen[-1], trainer.model) is False


def test_tensor_parallel_ranks_send_the_same_seeded_requests(tiny_path, monkeypatch):
    """2: under tensor parallelism every rank of a group sends the group's prompts with the same seeds (vLLM needs
    identical requests on every rank of the group) and keeps its own rows; simulated as the two ranks of one group."""
    from types import SimpleNamespace

    from ail_trainer.vllm_source import colocate_generate, request_seed

    llm = FakeLLM(tiny_path)
    engine = SimpleNamespace(tensor_parallel_size=2, tp_group="group", enable_sleep_mode=False, llm=llm)
    mine = {0: ([[5, 6, 7]], [request_seed(0, 1, 10)]), 1: ([[8, 9]], [request_seed(0, 1, 11)])}
    seen = {}
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "all_gather_object",
                            lambda out, obj, group=None: out.__setitem__(slice(None), [list(zip(*mine[0])),
                                                                                       list(zip(*mine[1]))]))
        monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None, r=rank: r)
        llm.sampler.requests.clear()
        rows = colocate_generate(engine, *mine[rank], K, {"max_tokens": 4, "logprobs": None})
        seen[rank] = [(p.seed, p.n) for p in llm.sampler.requests]
        assert len(rows) == 1 and len(rows[0]) == K
    assert seen[0] == seen[1] == [(mine[0][1][0], K), (mine[1][1][0], K)]
