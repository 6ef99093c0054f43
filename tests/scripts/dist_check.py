"""Runs recipes' train main under accelerate and writes what this rank saw to <output_dir>/rank<N>.json.

With AIL_TEST_CRASH_AFTER_SAVE=N the process dies hard right after saving checkpoint-N.
"""

import hashlib
import json
import os
import sys

from transformers import TrainerCallback

from ail_trainer.scripts.train import main
from ail_trainer.trainer import ActiveInheritanceTrainer

hashes = []
original_generate, original_init = ActiveInheritanceTrainer._generate_round, ActiveInheritanceTrainer.__init__


def recording_generate(self, *args):
    records, timing = original_generate(self, *args)
    hashes.append(hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest())
    return records, timing


class CrashAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["AIL_TEST_CRASH_AFTER_SAVE"]):
            os._exit(3)


def init_with_crash(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    if os.environ.get("AIL_TEST_CRASH_AFTER_SAVE"):
        self.add_callback(CrashAfterSave())


ActiveInheritanceTrainer._generate_round = recording_generate
ActiveInheritanceTrainer.__init__ = init_with_crash
trainer = main(sys.argv[1:])
rank = trainer.accelerator.process_index
with open(os.path.join(trainer.args.output_dir, f"rank{rank}.json"), "w") as f:
    json.dump({
        "rank": rank, "world": trainer.accelerator.num_processes, "hashes": hashes,
        "round_stats": trainer.round_stats, "global_step": trainer.state.global_step,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }, f)
