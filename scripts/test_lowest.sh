#!/usr/bin/env bash
# The fast job on the lowest supported set (constraints-lowest.txt: transformers 5.17, TRL 1.16, Accelerate 1.10.1,
# torch 2.13, what vLLM 0.31 requires) in its own environment: the compat, core, round, trainer, format and vLLM-source
# tests. `test_lowest.sh deps` only installs the dependencies (.ci/run does that while the main install runs).
# LOWEST_ENV sets the environment's folder (default .venv-lowest).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV="${LOWEST_ENV:-.venv-lowest}"
if [ ! -x "$ENV/bin/python" ]; then
  python3 -m venv "$ENV"
  "$ENV/bin/python" -m pip install -q --upgrade pip
  python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > "$ENV/requirements.txt"
  "$ENV/bin/python" -m pip install -q -c constraints-lowest.txt -r "$ENV/requirements.txt" pytest peft==0.21.2
fi
[ "${1:-}" = "deps" ] && exit 0
"$ENV/bin/python" -m pip install -q --no-deps -e .
"$ENV/bin/python" -m pip check
"$ENV/bin/python" -c "import transformers, trl, accelerate, torch; print('lowest set: transformers', \
transformers.__version__, '| trl', trl.__version__, '| accelerate', accelerate.__version__, '| torch', torch.__version__)"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$ENV/bin/python" -m pytest -q -p no:cacheprovider tests/test_compat.py tests/test_generation.py tests/test_round.py \
  tests/test_trainer.py tests/test_formats.py tests/test_vllm.py
