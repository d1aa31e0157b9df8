"""`unmask synth` end to end: manifest in, synthetic crops + manifest out.

    run_blend(manifest, out_dir, pair=False, ...)    -> summary dict
    run_upsample(manifest, out_dir, upsampler=...)   -> summary dict
    run_gan(manifest, out_dir, ...)                  -> summary dict

Bookkeeping (no leakage): every synthetic row made from a parent crop takes the parent's
`split` and `group`; a pair blend takes the target's, and its donor is drawn from the same
split (another group). GAN samples have no single parent: the WGAN-GP is trained on the real
rows of one split (`split`, default `train`) and its samples are put in that split, each in its
own group. Train a GAN per split (`split="val"`, `"test"`) for synthetic val/test sets.

Each method is one module on the shared skeleton (`unmask.synth.skeleton.SynthRun`: read
the manifest, pick the real rows, write rows and the output manifest): `blend_run`,
`upsample_run`, `gan_run`.

Randomness comes from `numpy.random.default_rng([seed, row, copy])` per synthetic image (and
torch seeded with `seed`), so a run is reproducible and independent of processing order.
"""

from __future__ import annotations

from unmask.synth.blend_run import run_blend
from unmask.synth.gan_run import run_gan
from unmask.synth.skeleton import spectrum_sheet, summary_line
from unmask.synth.upsample_run import run_upsample

__all__ = ["run_blend", "run_gan", "run_upsample", "spectrum_sheet", "summary_line"]
