"""The vLLM path for the policy: TRL's `VLLMGeneration` behind the candidate-source interface.

The engine itself needs a GPU and `vllm`; that test skips here and says why (as TRL's `require_vllm` does). The
source's own logic (request arguments, slicing k samples per prompt, stops, seeds, weight syncs) is tested here with a
stand-in engine; `tests/vllm_contract/` checks it against vLLM's and TRL's real classes (`scripts/vllm_contract.sh`).
"""

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.generation import SamplingSettings
from ail_trainer.prompts import prompt_dataset
from ail_trainer.records import read_round
from ail_trainer.vllm_source import VLLMSource, request_seed, vllm_sampling_kwargs

HAS_VLLM = importlib.util.find_spec("vllm") is not None
requires_vllm_gpu = pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()),
                                       reason="needs vLLM and a CUDA GPU")


class StandInEngine:
    """Answers like TRL's `VLLMGeneration` in server mode: the main process's request, one completion per (repeated)
    prompt; records the request arguments and counts weight syncs."""

    mode = "server"

    def __init__(self, completions):
        self.completions, self.syncs, self.calls = completions, 0, []
        self.generation_kwargs, self.logprobs, self.max_completion_length = {}, 0, 16

    def sync_weights(self):
        self.syncs += 1

    def generate(self, prompts, images, num_generations):
        self.calls.append((prompts, num_generations, dict(self.generation_kwargs), self.logprobs))
        return prompts, self.completions[: len(prompts)], None, None


def stand_in_source(tok, completions, max_tokens=4, state=None, **kw):
    engine = StandInEngine(completions)
    version = state if state is not None else {"owner": object(), "step": 0}
    source = VLLMSource(engine, tok, num_candidates=2, stop={tok.eos_token_id}, conversational=False,
                        sampling=SamplingSettings(max_new_tokens=max_tokens), seed=3,
                        weights_version=lambda: (version["owner"], version["step"]), **kw)
    return source, engine, version


def test_vllm_source_slices_samples_and_reads_finished_from_the_length(tiny):
    _, tok = tiny
    eos = tok.eos_token_id
    hello, world = (tok(w, add_special_tokens=False)["input_ids"] for w in ("hello", "world"))
    cap = max(len(hello), len(world)) + 2
    full = (world * cap)[:cap]  # cut at the cap
    # sample 2: stopped early without an EOS the policy knows in memory (an EOS vLLM read from disk)
    source, engine, _ = stand_in_source(tok, [hello + [eos, 7], world, full, hello], max_tokens=cap)
    out = source.candidates(0, [0, 1], ["a prompt", "another prompt"])
    assert [[c.text for c in row] for row in out] == [["hello", "world"], [tok.decode(full), "hello"]]
    assert [[c.finished for c in row] for row in out] == [[True, True], [False, True]]
    assert out[0][0].ids == hello and out[0][0].num_tokens == len(hello)
    prompts, k, request, logprobs = engine.calls[0]
    assert k == 2 and prompts[0] == prompts[1] != prompts[2] == prompts[3]  # each prompt repeated k times
    assert request["stop_token_ids"] == [eos] and request["max_tokens"] == cap and request["logprobs"] is None
    assert logprobs is None  # no log-probabilities computed for nothing


def test_vllm_weights_sync_after_every_optimizer_step_and_every_new_train(tiny):
    _, tok = tiny
    source, engine, version = stand_in_source(tok, [[5]] * 4)
    for _ in range(2):  # two calls in one round, at one step: one sync
        source.candidates(0, [0, 1], ["a", "b"])
    assert engine.syncs == 1
    version["step"] = 4
    source.candidates(1, [0, 1], ["a", "b"])
    assert engine.syncs == 2
    version["owner"], version["step"] = object(), 4  # a second train(): round 0 again, new weights, same step
    source.candidates(0, [0, 1], ["a", "b"])
    assert engine.syncs == 3


def test_vllm_request_seeds_follow_seed_round_and_prompt(tiny):
    _, tok = tiny
    source, engine, _ = stand_in_source(tok, [[5]] * 4)
    source.candidates(0, [7, 8], ["a", "b"])
    source.candidates(1, [7, 8], ["a", "b"])
    seeds = [call[2]["seed"] for call in engine.calls]
    assert seeds == [request_seed(3, 0, 7), request_seed(3, 1, 7)] and seeds[0] != seeds[1]
    assert request_seed(3, 0, 7) == request_seed(3, 0, 7) != request_seed(4, 0, 7)


def test_generation_kwargs_are_translated_to_sampling_params_names():
    settings = SamplingSettings(max_new_tokens=8, generation_kwargs={
        "max_new_tokens": 5, "min_new_tokens": 2, "stop_strings": ["END"], "min_p": 0.1, "eos_token_id": [9]})
    kwargs = vllm_sampling_kwargs(settings, [2], ("###",))
    assert kwargs["max_tokens"] == 5 and kwargs["min_tokens"] == 2 and kwargs["min_p"] == 0.1
    assert kwargs["stop"] == ["###", "END"] and kwargs["stop_token_ids"] == [2, 9] and kwargs["logprobs"] is None
    assert "max_new_tokens" not in kwargs and "eos_token_id" not in kwargs
    greedy = vllm_sampling_kwargs(SamplingSettings(max_new_tokens=8, generation_kwargs={"do_sample": False}))
    assert greedy["temperature"] == 0.0 and "do_sample" not in greedy


@pytest.mark.parametrize("key, match", [("typical_p", "no vLLM `SamplingParams` equivalent"),
                                        ("seed", "every request is seeded")])
def test_generation_kwargs_vllm_cannot_take_fail_before_training(key, match):
    with pytest.raises(ValueError, match=match):
        vllm_sampling_kwargs(SamplingSettings(max_new_tokens=8, generation_kwargs={key: 1}))
    with pytest.raises(ValueError, match=match):
        ActiveInheritanceConfig("x", use_vllm=True, generation_kwargs={key: 1}, bf16=False)
    ActiveInheritanceConfig("x", use_vllm=False, generation_kwargs={"typical_p": 0.9}, bf16=False)  # transformers


def test_vllm_engine_sizes_its_context_and_sequences(tiny, make_args, monkeypatch):
    import trl.generation.vllm_generation as trl_vllm

    from ail_trainer import vllm_source

    model, tok = tiny
    made = {}
    monkeypatch.setattr(trl_vllm, "VLLMGeneration", lambda *a, **kw: made.update(kw) or kw)
    prompts = ["short", "a much longer prompt " * 5]
    trainer = SimpleNamespace(
        args=make_args(use_vllm=True, max_prompt_length=None, max_completion_length=8, vllm_tensor_parallel_size=2,
                       generation_batch_size=4, num_candidates=3),
        model=model, accelerator=None, processing_class=tok, tokenizer_for_text=tok,
        prompt_data=SimpleNamespace(prompts=prompts, conversational=False))
    vllm_source.vllm_engine(trainer)
    assert made["max_model_length"] == len(tok(prompts[1])["input_ids"]) + 8
    assert made["max_num_seqs"] == 4 * 3 * 2 and made["logprobs"] is None
    trainer.args = make_args(use_vllm=True, max_prompt_length=32, max_completion_length=8, vllm_max_model_length=None)
    vllm_source.vllm_engine(trainer)
    assert made["max_model_length"] == 40


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_use_vllm_without_vllm_fails_before_training(tiny, make_args):
    model, tok = tiny
    with pytest.raises(ImportError, match="pip install"):
        ActiveInheritanceTrainer(model, make_args(use_vllm=True), processing_class=tok, reward_funcs=["length"],
                                 train_dataset=prompt_dataset("train").select(range(4)))


def test_vllm_config_fields_use_grpo_names():
    from trl import GRPOConfig

    ours = {f for f in ActiveInheritanceConfig.__dataclass_fields__ if f == "use_vllm" or f.startswith("vllm_")}
    grpo = set(GRPOConfig.__dataclass_fields__)
    assert ours <= grpo, ours - grpo
    with pytest.raises(ValueError, match="vllm_mode must be one of"):
        ActiveInheritanceConfig("x", vllm_mode="remote", bf16=False)


@requires_vllm_gpu
def test_vllm_colocate_round_trains(tiny_path, tmp_path):  # untested here: no GPU
    args = ActiveInheritanceConfig(output_dir=str(tmp_path), use_vllm=True, vllm_mode="colocate",
                                   vllm_gpu_memory_utilization=0.2, num_candidates=2, max_completion_length=8,
                                   per_device_train_batch_size=4, max_steps=2, report_to=[], save_strategy="no")
    trainer = ActiveInheritanceTrainer(tiny_path, args, reward_funcs=["length"],
                                       train_dataset=prompt_dataset("train").select(range(8)))
    trainer.train()
    records = read_round(str(tmp_path), 0)
    assert records and all(len(r.candidates) == 2 for r in records)
