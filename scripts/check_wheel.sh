#!/usr/bin/env bash
# Builds the wheel, installs it in a fresh virtual environment (with the pinned constraints), and runs the console
# script from a folder outside the repository: `ail-train --help`, then the packaged toy recipe, offline.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d -t ail-wheel-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
# build from a copy of the tracked files, so the source tree gets no build/ or egg-info
mkdir "$WORK/src"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -P -t "$WORK/src")
python3 -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip
"$WORK/venv/bin/python" -m pip install -q -c "$ROOT/constraints.txt" "$WORK"/dist/ail_trainer-*.whl
cd "$WORK"  # no recipes/ folder, no source tree here
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$WORK/venv/bin/ail-train" --help > help.txt
grep -q -- "--num_candidates" help.txt
"$WORK/venv/bin/ail-train" --config tiny --output_dir "$WORK/out" --num_train_epochs 1 --save_strategy no
test -f "$WORK/out/active_inheritance.json"
test -f "$WORK/out/model.safetensors"
echo "wheel check passed: $(ls "$WORK"/dist)"
