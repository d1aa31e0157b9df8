#!/usr/bin/env bash
# The shipped default model, end to end (issue 20): prepare the shared data, train the
# members (each leave-one-source-out where it sees fakes), choose the members and the
# fusion rule on val sources they never saw, fuse with a threshold that protects real
# photos, and measure everything per source.
#
#   bash experiments/train_default.sh            # all steps (about 2 h on 2 CPU cores)
#   STEPS="choose compose bench" bash experiments/train_default.sh
#   ARTIFACT=src/unmask/assets/... BLEND=... STEPS="..."   # reuse trained members
#
# Candidate members (every one a plain model folder)
#   gan       configs/gan-lite0.yaml    ImageNet EfficientNet-Lite0 fine-tuned on resized face
#                                       crops, real vs every fully synthesised source, classes
#                                       balanced within face-size bins, JPEG/blur/resize alike
#   frozen    experiments/frozen_probe.py  the same network frozen + logistic regression (the
#                                       baseline the gan member must beat)
#   blend     configs/blend-lite0.yaml  Lite0 on real faces and their self-blends only
#   artifact  configs/artifact.yaml     native-pixel tiles, NPR residual (resampling traces)
# Choice      experiments/fusion_rule.py: every subset x {max, logistic}, scored on each val
#             source by members that never trained on it; the highest mean size-matched AUC.
# Threshold   at most MAX_FPR of the val reals of EVERY real source flagged (unmask compose
#             --max-fpr), the best balanced accuracy among those thresholds.
# Measured    `unmask bench` on the test split, leave-one-source-out where it applies.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PREP=${PREP:-work/prepared}
OUT=${OUT:-work/default}
STEPS=${STEPS:-prepare gan frozen artifact blend choose compose bench}
GAN_SOURCES=${GAN_SOURCES:-celeba_gan generated_photos sdfd ffhq_stylegan}
MAX=${MAX:-60}            # test rows scored per (source, label): a seeded sample (0: all)
MAX_FPR=${MAX_FPR:-0.05}
ROBUST=${ROBUST-jpeg:70 resize:0.5 blur:1}   # perturbations benched for the fused model alone
MODEL_ID=${MODEL_ID:-unmask-default-gan-v2}
# trained members to reuse instead of training them (folders); the artifact member's
# leave-one-source-out folds are then looked for under $OUT/loso/artifact-<source>
ARTIFACT=${ARTIFACT:-$OUT/artifact}
BLEND=${BLEND:-$OUT/blend}
# the default that shipped before this one, to compare (a model folder; skipped if absent)
CURRENT=${CURRENT:-work/models/current-default}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

has() { [[ " $STEPS " == *" $1 "* ]]; }

if has prepare; then
  # one group per lfw_faceswap pair and per FaceForensics++ target video (see the data README)
  unmask prepare "$DATA/labels.csv" -o "$PREP" --group-regex '^(?:(?:fake|real)_)?(\d+)(?:_\d+)?$'
fi
if has gan; then
  unmask train configs/gan-lite0.yaml --set "data.manifest=$PREP/manifest.csv" -o "$OUT/gan"
  for s in $GAN_SOURCES; do
    unmask train configs/gan-lite0.yaml --set "data.manifest=$PREP/manifest.csv" \
      --set "data.exclude_sources=[$s]" -o "$OUT/loso/gan-$s"
  done
fi
if has frozen; then
  python experiments/frozen_probe.py configs/gan-lite0.yaml -o "$OUT/frozen" \
    --set "data.manifest=$PREP/manifest.csv" --holdout $GAN_SOURCES
fi
if has artifact; then
  unmask train configs/artifact.yaml --set "data.manifest=$PREP/manifest.csv" -o "$ARTIFACT"
  for s in $GAN_SOURCES; do
    unmask train configs/artifact.yaml --set "data.manifest=$PREP/manifest.csv" \
      --set "data.exclude_sources=[$s]" -o "$OUT/loso/artifact-$s"
  done
fi
if has blend; then  # never sees a fake: every fake source is held out for it already
  unmask train configs/blend-lite0.yaml --set "data.manifest=$PREP/manifest.csv" -o "$BLEND"
fi

folds() { echo "$1=${3:-$OUT/loso}/$1-{source}|$2"; }  # NAME ALL [FOLDS_DIR]
CANDIDATES=(
  --member "$(folds gan "$OUT/gan")"
  --member "$(folds frozen "$OUT/frozen/all" "$OUT/frozen/loso")"
  --member "blend=$BLEND"
  --member "$(folds artifact "$ARTIFACT")"
)
member_dir() {  # NAME [SOURCE]: the all-sources folder, or the fold without SOURCE
  local all loso=$OUT/loso
  case $1 in gan) all=$OUT/gan ;; frozen) all=$OUT/frozen/all loso=$OUT/frozen/loso ;; blend) all=$BLEND ;; artifact) all=$ARTIFACT ;; esac
  if [ -n "${2:-}" ] && [ -f "$loso/$1-$2/model.json" ]; then echo "$loso/$1-$2"; else echo "$all"; fi
}
if has choose; then
  python experiments/fusion_rule.py --prepared "$PREP" --max-fpr "$MAX_FPR" \
    "${CANDIDATES[@]}" -o "$OUT/fusion_rule.json" | tee "$OUT/fusion_rule.txt"
fi
if has compose; then
  MEMBERS=${MEMBERS:-$(grep '^members:' "$OUT/fusion_rule.txt" | cut -d' ' -f2)}
  RULE=${RULE:-$(grep '^rule:' "$OUT/fusion_rule.txt" | cut -d' ' -f2)}
  IFS=, read -r -a names <<< "$MEMBERS"
  dirs=(); for n in "${names[@]}"; do dirs+=("$(member_dir "$n")"); done
  rm -rf "$OUT/fused"
  unmask compose "${dirs[@]}" --names "$MEMBERS" --val "$PREP" --rule "$RULE" \
    --max-fpr "$MAX_FPR" --id "$MODEL_ID" -o "$OUT/fused"
  for s in $GAN_SOURCES; do  # the same composite from members that never saw s
    dirs=(); for n in "${names[@]}"; do dirs+=("$(member_dir "$n" "$s")"); done
    rm -rf "$OUT/loso/fused-$s"
    unmask compose "${dirs[@]}" --names "$MEMBERS" --val "$PREP" --rule "$RULE" \
      --max-fpr "$MAX_FPR" -o "$OUT/loso/fused-$s"
  done
fi
if has bench; then
  # {source}: the model trained without that source where one exists, else the all-sources
  # model (held out by construction for the sources it never trained on). A composite's
  # calibration, rule and threshold are refitted on the val rows of the other sources.
  MODELS=(
    --model "fused=$OUT/loso/fused-{source}|$OUT/fused"
    --model "$(folds gan "$OUT/gan")"
    --model "$(folds frozen "$OUT/frozen/all" "$OUT/frozen/loso")"
    --model "$(folds artifact "$ARTIFACT")"
    --model "blend=$BLEND"
  )
  [ -f "$CURRENT/model.json" ] && MODELS+=(--model "current=$CURRENT")
  for p in none jpeg:90; do
    unmask bench "$PREP" -o "$OUT/bench-${p/:/}" --perturb "$p" --quiet --max-per-source "$MAX" \
      "${MODELS[@]}"
  done
  for p in $ROBUST; do  # robustness: the fused model alone
    unmask bench "$PREP" -o "$OUT/robust-${p/:/}" --perturb "$p" --quiet --max-per-source "$MAX" \
      --model "fused=$OUT/loso/fused-{source}|$OUT/fused"
  done
  unmask detect "$DATA/videos" --model "$OUT/fused" --json > "$OUT/videos.json"
  python experiments/default_card.py "$OUT"
fi
echo "model: $OUT/fused   tables: $OUT/bench-*/bench.md   choice: $OUT/fusion_rule.txt"
