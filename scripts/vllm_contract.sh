#!/usr/bin/env bash
# The vLLM contract job (not part of .ci/run): an environment with vllm==0.31.0 beside the CPU torch 2.13, then
# tests/vllm_contract, which drives TRL's real VLLMGeneration and VLLMClient through our source with only vllm.LLM
# and the HTTP server replaced (tests/vllm_contract/fakes.py).
# Usage: bash scripts/vllm_contract.sh [pytest args]; VLLM_ENV sets the environment's folder (default .venv-vllm).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV="${VLLM_ENV:-.venv-vllm}"
if [ ! -x "$ENV/bin/python" ]; then
  start=$(date +%s)
  python3 -m venv "$ENV"
  "$ENV/bin/python" -m pip install -q --upgrade pip
  "$ENV/bin/python" -m pip install -q -c constraints-vllm.txt torch==2.13.0 vllm==0.31.0 -e . pytest
  # vLLM pulls PyPI's torchvision, torchaudio and torchcodec, built against another torch: importing vLLM's
  # SamplingParams then fails ("operator torchvision::nms does not exist", then torchcodec's image library).
  # Text generation needs none of them.
  "$ENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec
  echo "vLLM environment: $(du -sh "$ENV" | cut -f1), installed in $(( $(date +%s) - start )) s"
fi
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$ENV/bin/python" -c "import vllm, transformers, trl, torch; print('vllm', vllm.__version__, '| transformers', \
transformers.__version__, '| trl', trl.__version__, '| torch', torch.__version__)"
"$ENV/bin/python" -m pytest -q tests/vllm_contract "$@"
