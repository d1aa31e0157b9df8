#!/usr/bin/env bash
# Issue 11: leave-one-synthesised-source-out runs of the artifact detector, the matching
# spectrum-logreg folds, the final all-sources model, and the evaluation at JPEG q90.
#
#   bash experiments/artifact_loso.sh [FRONT]        # FRONT: npr (default) | dct | srm | bayar
#
# Every run is sized for ~10-15 minutes on 2 shared CPU cores (configs/artifact.yaml).
# Outputs go to work/artifact/ (git-ignored); the final model to work/models/artifact.
set -euo pipefail
FRONT=${1:-npr}
W=work/artifact
mkdir -p "$W"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
train() {  # NAME EXCLUDES [extra --set ...]
  local name=$1 ex=$2
  shift 2
  nice -n 5 unmask train configs/artifact.yaml --set "data.exclude_sources=$ex" \
    --set "detector.kwargs={front: $FRONT, width: 8}" --set "output=$W/$name" "$@" \
    >"$W/$name.log" 2>&1
}
# 0. screening: reals + simulated upsampling fakes only (no synthesised source at all)
#    train simonly-$FRONT "[celeba_gan,generated_photos,sdfd]"
# 1. held-out folds
for s in celeba_gan generated_photos sdfd; do
  train "loso-$s-$FRONT" "[$s]"
  nice -n 10 unmask train configs/spectrum-logreg.yaml --set "data.labels=[real,gan]" \
    --set "data.exclude_sources=[$s]" --set "output=$W/spectrum-loso-$s" >"$W/spectrum-$s.log" 2>&1
done
# 2. final model on every source's train split
train "final-$FRONT" "[]" --set output=work/models/artifact
# 3. evaluation at JPEG q90 (and robustness for the final model)
for s in celeba_gan generated_photos sdfd; do
  python experiments/artifact_eval.py --tile "artifact=$W/loso-$s-$FRONT" \
    --crop "spectrum=$W/spectrum-loso-$s" default=src/unmask/assets/default_model \
    --perturb jpeg:90 --out "$W/eval-loso-$s"
done
python experiments/artifact_eval.py --tile artifact=work/models/artifact \
  --crop default=src/unmask/assets/default_model \
  --perturb jpeg:90,70 resize:0.5 blur:1 --out "$W/eval-final"
