"""Rebuild the shipped offline toy model, `ail_trainer/resources/tiny-chat` (a developer tool, never run at use time).

    python scripts/build_tiny_chat.py

A 0.5M-parameter Llama with its own 512-token BPE tokenizer and chat template, warm-started with plain SFT on the
built-in train prompts so that it answers briefly. One process, CPU, seeded; about 10 s.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from trl import SFTConfig, SFTTrainer

from ail_trainer.prompts import prompt_dataset
from ail_trainer.testing import build_model, build_tokenizer

TARGET = Path(__file__).resolve().parents[1] / "ail_trainer" / "resources" / "tiny-chat"


def main() -> None:
    tok = build_tokenizer(vocab_size=512)
    model = build_model(tok, "llama", hidden_size=96, num_layers=3, num_heads=4, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        args = SFTConfig(tmp, num_train_epochs=4, learning_rate=3e-3, per_device_train_batch_size=16, bf16=False,
                         report_to=[], save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True)
        SFTTrainer(model, args, train_dataset=prompt_dataset("train"), processing_class=tok).train()
    shutil.rmtree(TARGET, ignore_errors=True)
    model.save_pretrained(TARGET)
    tok.save_pretrained(TARGET)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
