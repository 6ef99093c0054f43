"""The vLLM path for the policy: TRL's `VLLMGeneration` behind the candidate-source interface.

The engine itself needs a GPU and `vllm`; those tests skip here and say why (as TRL's `require_vllm` does). The
source's own logic (slicing k samples per prompt, EOS, one weight sync per round) is tested with a stand-in engine.
"""

import importlib.util

import pytest
import torch

from ail_trainer import ActiveInheritanceConfig, ActiveInheritanceTrainer
from ail_trainer.prompts import prompt_dataset
from ail_trainer.records import read_round
from ail_trainer.sources import VLLMSource

HAS_VLLM = importlib.util.find_spec("vllm") is not None
requires_vllm_gpu = pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()),
                                       reason="needs vLLM and a CUDA GPU")


class StandInEngine:
    """Answers like `VLLMGeneration.generate`: one completion per (repeated) prompt, counting weight syncs."""

    def __init__(self, completions):
        self.completions, self.syncs, self.calls = completions, 0, []

    def sync_weights(self):
        self.syncs += 1

    def generate(self, prompts, images, num_generations):
        self.calls.append((prompts, num_generations))
        return prompts, self.completions[: len(prompts)], None, None


def test_vllm_source_slices_samples_and_syncs_once_per_round(tiny):
    _, tok = tiny
    eos = tok.eos_token_id
    hello, world = (tok(w, add_special_tokens=False)["input_ids"] for w in ("hello", "world"))
    engine = StandInEngine([hello + [eos, 7], world, world + [eos], hello])
    source = VLLMSource(engine, tok, num_candidates=2, stop={eos}, conversational=False)
    out = source.candidates(0, [0, 1], ["a prompt", "another prompt"])
    assert [[c.text for c in row] for row in out] == [["hello", "world"], ["world", "hello"]]
    assert [[c.finished for c in row] for row in out] == [[True, False], [True, False]]
    assert out[0][0].ids == hello and out[0][0].num_tokens == len(hello)
    prompts, k = engine.calls[0]
    assert k == 2 and prompts[0] == prompts[1] != prompts[2] == prompts[3]  # each prompt repeated k times
    source.candidates(0, [0, 1], ["a prompt", "another prompt"])  # same round (another call): no new sync
    assert engine.syncs == 1
    source.candidates(1, [0, 1], ["a prompt", "another prompt"])
    assert engine.syncs == 2


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
