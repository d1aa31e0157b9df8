#!/usr/bin/env bash
# The shipped default model, end to end: prepare the shared data, train the two members,
# fuse them on validation, and measure everything per source (issue 13).
#
#   bash experiments/train_default.sh            # all steps (hours on 2 CPU cores)
#   STEPS="compose bench" bash experiments/train_default.sh
#
# Members
#   artifact  configs/artifact.yaml     native-pixel tiles, NPR residual CNN: real vs fully
#                                       synthesised + simulated upsampling fakes
#   blend     configs/blend-lite0.yaml  ImageNet EfficientNet-Lite0 on resized crops, real
#                                       faces + their self-blends only (needs .[pretrained])
# Fusion      `unmask compose` on the val split: Platt calibration per member (the artifact
#             member per face size when that measures better), then max or
#             logistic stacking, whichever experiments/fusion_rule.py finds better on val
#             sources the members never saw (RULE=max|logistic skips it); threshold on val.
# Measured    `unmask bench` on the test split: the fused model, each member and the
#             previous default; leave-one-source-out where it applies (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PREP=${PREP:-work/prepared}
OUT=${OUT:-work/default}
STEPS=${STEPS:-prepare artifact loso blend compose bench}
GAN_SOURCES=${GAN_SOURCES:-celeba_gan generated_photos sdfd}
# test rows scored per (source, label): a seeded sample, to fit 2 CPU cores (0: all)
MAX=${MAX:-60}
# face-size bins (crop-box side, px) of the artifact member's calibration: its training
# balances classes within the same bins (configs/artifact.yaml data.tiles.scale_edges)
SIZE_EDGES=${SIZE_EDGES:-200,400}
MODEL_ID=${MODEL_ID:-unmask-default-fused-v1}
# the model that shipped before this one (ResNet-10-T), kept outside the package to compare
PREVIOUS=${PREVIOUS:-work/models/previous-default}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

has() { [[ " $STEPS " == *" $1 "* ]]; }

if has prepare; then
  # one group per lfw_faceswap pair and per FaceForensics++ target video (see the data README)
  unmask prepare "$DATA/labels.csv" -o "$PREP" --group-regex '^(?:(?:fake|real)_)?(\d+)(?:_\d+)?$'
fi
if has artifact; then
  unmask train configs/artifact.yaml --set "data.manifest=$PREP/manifest.csv" -o "$OUT/artifact"
fi
if has loso; then
  # the artifact member without each fully synthesised source (the blend member never sees
  # a fake, so every fake source is already held out for it)
  for s in $GAN_SOURCES; do
    unmask train configs/artifact.yaml --set "data.manifest=$PREP/manifest.csv" \
      --set "data.exclude_sources=[$s]" -o "$OUT/loso/artifact-$s"
  done
fi
if has blend; then
  unmask train configs/blend-lite0.yaml --set "data.manifest=$PREP/manifest.csv" -o "$OUT/blend"
fi
if has compose; then
  # the rule (max or logistic) and whether the artifact member is calibrated per face size
  # (crop-box side cut at SIZE_EDGES): whichever has the higher mean AUC on val sources that
  # the members never trained on (experiments/fusion_rule.py; RULE=... SIZED=no|platt|abstain skip it)
  if [ -z "${RULE:-}" ] || [ -z "${SIZED:-}" ]; then
    choice=$(python experiments/fusion_rule.py "$OUT" --prepared "$PREP" --size-edges "$SIZE_EDGES")
    RULE=${RULE:-$(echo "$choice" | grep '^rule:' | cut -d' ' -f2)}
    SIZED=${SIZED:-$(echo "$choice" | grep '^size:' | cut -d' ' -f2)}
  fi
  SIZE_FLAG=()
  [ "$SIZED" != no ] && SIZE_FLAG=(--size-calibrate "artifact=$SIZE_EDGES" --size-mode "$SIZED")
  rm -rf "$OUT/fused"
  unmask compose "$OUT/artifact" "$OUT/blend" --names artifact,blend --val "$PREP" \
    --rule "$RULE" "${SIZE_FLAG[@]}" --id "$MODEL_ID" -o "$OUT/fused"
  for s in $GAN_SOURCES; do
    [ -d "$OUT/loso/artifact-$s" ] || continue
    rm -rf "$OUT/loso/fused-$s"
    unmask compose "$OUT/loso/artifact-$s" "$OUT/blend" --names artifact,blend --val "$PREP" \
      --rule "$RULE" "${SIZE_FLAG[@]}" -o "$OUT/loso/fused-$s"
  done
fi
if has bench; then
  # {source}: the model trained without that source where one exists, else the all-sources
  # model (held out by construction for the sources it never trained on). A composite's
  # calibration, rule and threshold are refitted on the val rows of the other sources.
  for p in none jpeg:90; do
    unmask bench "$PREP" -o "$OUT/bench-${p/:/}" --perturb "$p" --quiet --max-per-source "$MAX" \
      --model "fused=$OUT/loso/fused-{source}|$OUT/fused" \
      --model "artifact=$OUT/loso/artifact-{source}|$OUT/artifact" \
      --model "blend=$OUT/blend" \
      --model "previous=$PREVIOUS"
  done
  # robustness: the fused model alone under each perturbation (same leave-one-source-out)
  for p in jpeg:70 resize:0.5 blur:1; do
    unmask bench "$PREP" -o "$OUT/robust-${p/:/}" --perturb "$p" --quiet --max-per-source "$MAX" \
      --model "fused=$OUT/loso/fused-{source}|$OUT/fused"
  done
  unmask detect "$DATA/videos" --model "$OUT/fused" --json > "$OUT/videos.json"
  python experiments/default_card.py "$OUT"
fi
echo "model: $OUT/fused   tables: $OUT/bench-*/bench.md  $OUT/eval/report.md"
