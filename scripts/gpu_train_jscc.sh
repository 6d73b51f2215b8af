#!/usr/bin/env bash
# The one command line for DeepJSCC runs on the lent GPU machine (see docs/jscc/training-log.md).
#
#   bash scripts/gpu_train_jscc.sh smoke                      # ~1.5 min: compiled speed, resume, eval path
#   bash scripts/gpu_train_jscc.sh train STEPS BUDGET_S       # fresh cosine cycle, then Kodak24 eval
#   bash scripts/gpu_train_jscc.sh continue STEPS BUDGET_S [CHECKPOINT]
#                                                             # new cycle from CHECKPOINT (default: the last
#                                                             # run's, still on a warm machine), then eval
#   bash scripts/gpu_train_jscc.sh from-weights STEPS BUDGET_S
#                                                             # new cycle from the shipped fp16 weights with a
#                                                             # fresh optimizer (a cold machine: the fp32
#                                                             # checkpoint does not fit the 64 MiB carry), then eval
#
# VERSION=N names the version written into the exported weights (default 1; bump it when shipping).
#
# Needs .gpudata/bsds500 and .gpudata/kodak24 carried (copies of ../shared/data/train/bsds500 and
# ../shared/data/kodak24). Writes to $OUT: checkpoint/ (shards < 16 MiB), train_log.csv, summary.json
# and the eval JSON; keeps a copy of the checkpoint and log in .gpudata/last-run for `continue`.
set -euo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
mode=${1:?mode: smoke, train, continue or from-weights}
out=${OUT:?OUT must name the folder whose files come back}
data=.gpudata/bsds500
kodak=.gpudata/kodak24
name=deepjscc-afgdn
weights=.gpudata/weights/$name.safetensors
jscc=(python3 -m gensemcom.shared.jscc.cli)  # = semcom jscc
train=("${jscc[@]}" train --data "$data" --compile --name "$name" --version "${VERSION:-1}" --weights-out "$weights")

# The weights' own eval JSON: PSNR only, the SNR grid and fades of the model card (the full Kodak
# report with MS-SSIM and the digital reference is docs/jscc/kodak.json, made on a CPU), then the
# encode/decode speed of the exported weights on this GPU.
evaluate() {
  "${jscc[@]}" eval --weights "$weights" --kodak "$kodak" --out "$out/$name.eval.json" --snrs 1,4,7,10,13,16,19 \
    --rayleigh-draws 4 --no-ms-ssim --digital-rates "" "$@"
  python3 bench/jscc.py --device cuda --out "$out/bench-jscc-cuda.json"
}

keep_for_next_run() {
  rm -rf .gpudata/last-run && mkdir -p .gpudata/last-run
  cp -r "$out/checkpoint" "$out/train_log.csv" .gpudata/last-run/
}

case "$mode" in
  smoke)
    nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv
    python3 -c "import torch, safetensors, typer, tqdm; print('torch', torch.__version__, 'safetensors', safetensors.__version__)"
    "${train[@]}" --out /tmp/compiled64 --batch 64 --steps 160 --warmup 10 --log-every 40 --checkpoint-every-s 1e9
    ls -la /tmp/compiled64/checkpoint
    "${jscc[@]}" train --data "$data" --out /tmp/resumed --batch 64 --resume /tmp/compiled64/checkpoint \
      --new-cycle --steps 20 --warmup 5 --log-every 10
    cp /tmp/compiled64/train_log.csv /tmp/compiled64/summary.json "$out/"
    evaluate
    ;;
  train)
    steps=${2:?STEPS}; budget=${3:?BUDGET_S}
    "${train[@]}" --out "$out" --steps "$steps" --time-budget-s "$budget"
    keep_for_next_run
    evaluate
    ;;
  continue)
    steps=${2:?STEPS}; budget=${3:?BUDGET_S}; from=${4:-.gpudata/last-run/checkpoint}
    [ -f "$(dirname "$from")/train_log.csv" ] && cp "$(dirname "$from")/train_log.csv" "$out/"
    "${train[@]}" --out "$out" --resume "$from" --new-cycle --steps "$steps" --time-budget-s "$budget"
    keep_for_next_run
    evaluate
    ;;
  from-weights)
    steps=${2:?STEPS}; budget=${3:?BUDGET_S}
    "${train[@]}" --out "$out" --init-weights "gensemcom/shared/jscc/weights/$name.safetensors" --steps "$steps" \
      --time-budget-s "$budget"
    keep_for_next_run
    evaluate
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
