#!/usr/bin/env bash
# Which detector family should ship? Train each candidate on some sources and test on
# sources it never saw, then on every source's test split. Reproduces the model card's
# tables. Needs the prepared shared data (see configs/default-model.yaml); ~30 min on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-work/default-model-selection}
HELD_OUT=${HELD_OUT:-celeba_gan,faceforensics}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

train_eval() {  # name config [--set ...]
  local name=$1 cfg=$2; shift 2
  unmask train "$cfg" --set "data.exclude_sources=$HELD_OUT" "$@" -o "$OUT/$name"
  unmask eval --model "$OUT/$name" work/prepared --split test -o "$OUT/$name/eval" --quiet
}

train_eval spectrum-logreg configs/spectrum-logreg.yaml
train_eval dct-ridge configs/dct-ridge.yaml
# CNNs: 8 epochs here (the shipped model trains 12 on all sources).
train_eval resnet10t configs/default-model.yaml --set trainer.max_epochs=8
train_eval efficientnet_b0 configs/default-model.yaml --set trainer.max_epochs=8 \
  --set detector.kwargs.backbone=efficientnet_b0
echo "reports: $OUT/*/eval/report.md"
