"""Runs recipes' train main under accelerate and writes what this rank saw to <output_dir>/rank<N>.json.

Fault injection, by environment variable (every rank that reaches the point dies hard, as a killed job would):
- AIL_TEST_CRASH_AFTER_SAVE=N: right after checkpoint-N is saved;
- AIL_TEST_CRASH_IN_ROUND=R: in the middle of round R's generation, before any record of it is written;
- AIL_TEST_CRASH_AFTER_RECORDS=R: right after round R's records are written, before its first step.
AIL_TEST_RANK1_BUILDS=1 makes rank 1, not rank 0, build a first-use model.
AIL_TEST_FSDP_ON_CPU=1 lifts Accelerate's one device gate on FSDP (it enables FSDP only on accelerators), so the
trainer's FSDP2 path runs on CPU processes over gloo.
"""

import hashlib
import json
import os
import sys

from transformers import TrainerCallback

import ail_trainer.generation as generation
import ail_trainer.trainer as trainer_module
from ail_trainer.scripts.train import main
from ail_trainer.trainer import ActiveInheritanceTrainer

CRASH = 3
hashes = []
current_round = [None]
original_run_round = ActiveInheritanceTrainer._run_round_on_all_processes
original_init = ActiveInheritanceTrainer.__init__


def recording_run_round(self, round_id, *args):
    current_round[0] = round_id
    result = original_run_round(self, round_id, *args)
    records = [r.to_json() for r in result.records]
    hashes.append(hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest())
    return result


class CrashAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["AIL_TEST_CRASH_AFTER_SAVE"]):
            os._exit(CRASH)


def init_with_crash(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    if os.environ.get("AIL_TEST_CRASH_AFTER_SAVE"):
        self.add_callback(CrashAfterSave())


if os.environ.get("AIL_TEST_CRASH_IN_ROUND"):
    original_batch, batches = generation._generate_batch, [0]

    def crashing_batch(*args, **kwargs):
        if current_round[0] == int(os.environ["AIL_TEST_CRASH_IN_ROUND"]):
            batches[0] += 1
            if batches[0] == 2:  # the first batch of the round is done, the rest is not
                os._exit(CRASH)
        return original_batch(*args, **kwargs)

    generation._generate_batch = crashing_batch

if os.environ.get("AIL_TEST_CRASH_AFTER_RECORDS"):
    original_write = trainer_module.write_round

    def write_then_crash(output_dir, round_id, records):
        path = original_write(output_dir, round_id, records)
        if round_id == int(os.environ["AIL_TEST_CRASH_AFTER_RECORDS"]):
            os._exit(CRASH)
        return path

    trainer_module.write_round = write_then_crash

if os.environ.get("AIL_TEST_FSDP_ON_CPU"):
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    original_state_init = AcceleratorState.__init__

    def state_init(self, *args, fsdp_plugin=None, **kwargs):
        original_state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    AcceleratorState.__init__ = state_init

if os.environ.get("AIL_TEST_RANK1_BUILDS") and os.environ.get("RANK") == "0":
    import time

    import ail_trainer.builtin as builtin

    def late(build):
        def wait_then_build():
            time.sleep(8)  # rank 1 takes the build lock first
            return build()
        return wait_then_build

    builtin.smollm2_path, builtin.gemma3_path = late(builtin.smollm2_path), late(builtin.gemma3_path)

ActiveInheritanceTrainer._run_round_on_all_processes = recording_run_round
ActiveInheritanceTrainer.__init__ = init_with_crash
trainer = main(sys.argv[1:])
rank = trainer.accelerator.process_index
with open(os.path.join(trainer.args.output_dir, f"rank{rank}.json"), "w") as f:
    json.dump({
        "rank": rank, "world": trainer.accelerator.num_processes,
        "distributed_type": trainer.accelerator.distributed_type.value,
        "param_types": sorted({type(p.data).__name__ for p in trainer.model_wrapped.parameters()}),
        "hashes": hashes, "round_stats": trainer.round_stats, "global_step": trainer.state.global_step,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }, f)
