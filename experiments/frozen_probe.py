"""The frozen-feature baseline of the `gan` member: ImageNet EfficientNet-Lite features,
never trained, and a logistic regression on them; one model folder per fold.

    python experiments/frozen_probe.py configs/gan-lite0.yaml -o work/default/frozen \
        --holdout celeba_gan generated_photos sdfd ffhq_stylegan

Writes OUT/all (every source) and OUT/loso/frozen-S for each held-out S (trained without S),
each an ordinary `unmask` model folder (the same network as the fine-tuned member, its head
= the regression with the feature standardisation folded in), so `unmask bench` scores it
like any model. The recipe is the fine-tuned member's, with the backbone frozen:
- every train row of the config (labels, sources) gives one view through the config's
  augmentation (JPEG, blur, resize drawn alike for every class), features computed ONCE;
- each fold weighs its rows as the fine-tuned member draws them (`data.balance`: classes
  alike within each face-size bin, sources alike within a class): sample weights, not draws;
- the L2 strength is chosen on that fold's val rows (AUC), and `unmask.training.engine.
  export_model` writes the folder (threshold and metrics on val, the one writer).
Features take a few minutes on 2 CPU cores; the regressions seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

C_GRID = (0.01, 0.1, 1.0)


def _features(model, loader) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from tqdm import tqdm

    feats, ys = [], []
    with torch.inference_mode():
        for x, _, y in tqdm(loader, desc="features", unit="batch", file=sys.stderr):
            x = x.contiguous(memory_format=torch.channels_last)
            feats.append(model.features(x).float().numpy())
            ys.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(ys)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", help="the fine-tuned member's config (configs/gan-lite0.yaml)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--holdout", nargs="*", default=[], help="one fold without each source")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)

    import torch
    from sklearn.linear_model import LogisticRegression
    from torch.utils.data import DataLoader

    from unmask.config import load_config
    from unmask.data.manifest import row_box_sides
    from unmask.metrics import roc_auc
    from unmask.modelfile import read_saved_model, write_saved_model
    from unmask.training.config import TrainConfig
    from unmask.training.datamodule import FaceDataModule
    from unmask.training.engine import detector_spec, export_model
    from unmask.training.sampling import balanced_row_weights

    cfg = load_config(TrainConfig, args.config, overrides=args.overrides)
    torch.manual_seed(cfg.seed)
    spec = detector_spec(cfg)
    model = spec.build(cfg.data.num_classes, pretrained=cfg.detector.pretrained).eval()
    model = model.to(memory_format=torch.channels_last)
    dm = FaceDataModule(cfg)
    dm.setup("fit")
    bs = 64
    f_train, y_train = _features(model, DataLoader(dm.dataset("train"), batch_size=bs))
    f_val, y_val = _features(model, DataLoader(dm.dataset("val", augment=False), batch_size=bs))
    tr, va = dm.train_df, dm.val_df
    d = cfg.data
    sides = row_box_sides(tr) if d.balance == "scale" else None

    folds = [("all", None)] + [(f"loso/frozen-{s}", s) for s in args.holdout]
    for name, held in folds:
        keep_t = (tr["source"] != held).to_numpy()
        keep_v = (va["source"] != held).to_numpy()
        w = balanced_row_weights(
            list(tr["label"][keep_t]),
            list(tr["source"][keep_t]),
            d.balance if d.balance != "none" else "source",
            None if sides is None else sides[keep_t],
            d.scale_edges,
        )
        x, y = f_train[keep_t], (y_train[keep_t] > 0).astype(int)
        mu, sd = x.mean(0), x.std(0) + 1e-6
        xs, xv = (x - mu) / sd, (f_val[keep_v] - mu) / sd
        yv = (y_val[keep_v] > 0).astype(int)
        best = None
        for c in C_GRID:
            lr = LogisticRegression(C=c, max_iter=2000).fit(xs, y, sample_weight=w * len(w))
            auc = roc_auc(yv, lr.decision_function(xv))
            print(f"{name}: C={c} val AUC {auc:.4f}", file=sys.stderr)
            if best is None or auc > best[0]:
                best = (auc, c, lr)
        _, c, lr = best
        coef = lr.coef_[0] / sd
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        head_w = torch.zeros_like(state["head.weight"])
        head_b = torch.zeros_like(state["head.bias"])
        head_w[1] = torch.as_tensor(coef, dtype=head_w.dtype)
        head_b[1] = float(lr.intercept_[0] - np.sum(coef * mu))
        state["head.weight"], state["head.bias"] = head_w, head_b
        fold_cfg = dataclasses.replace(
            cfg,
            data=dataclasses.replace(
                d, exclude_sources=tuple(d.exclude_sources) + ((held,) if held else ())
            ),
            output=str(args.output / name),
        )
        fold_dm = FaceDataModule(fold_cfg)
        fold_dm.setup("fit")
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / "probe.ckpt"
            torch.save(
                {
                    "state_dict": {f"model.{k}": v.contiguous() for k, v in state.items()},
                    "epoch": 0,
                    "global_step": 0,
                },
                ckpt,
            )
            out = export_model(fold_cfg, spec, fold_dm, ckpt, args.output / name)
        saved = read_saved_model(out)
        training = {k: v for k, v in saved.training.items() if k != "best_checkpoint"}
        training["method"] = (
            f"frozen ImageNet features + logistic regression (experiments/frozen_probe.py), "
            f"L2 C={c} chosen on val from {list(C_GRID)}; no network weight was trained"
        )
        write_saved_model(out, dataclasses.replace(saved, training=training))
        print(f"{name}: C={c} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
