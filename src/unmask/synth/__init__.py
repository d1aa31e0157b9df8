"""Synthesised training fakes from real faces (`unmask synth`).

Modules:
    blend       `self_blend(image, landmarks, rng) -> (fake, mask)` (Self-Blended Images) and
                `pair_blend(target, t_lm, donor, d_lm, rng) -> (fake, mask)` (landmark-warp face
                swap + Poisson blending). Pure numpy/OpenCV; the training datamodule calls
                `self_blend` on the fly when `data.synth` contains "blend".
    nets        AutoEncoder (transposed / nearest / bilinear upsampling decoders), DCGAN-style
                WGAN-GP Generator and Critic, `gradient_penalty`, safetensors save/load.
    train       `train_autoencoder`, `reconstruct`, `train_wgan_gp`, `sample` (uint8 arrays in/out).
    pipeline    `run_blend`, `run_upsample`, `run_gan`: manifest in -> crops + manifest out.
    common      image/landmark I/O, the output manifest (extra columns `mask`, `synth_params`),
                contact sheets.
    (the experiment comparing real and synthesised training fakes lives in
    experiments/synth_experiment.py)

Labels: blends are `edited`, upsampler reconstructions and GAN samples `gan`. Synthetic rows
keep their parent's split and group; GAN samples go to the split whose reals trained the GAN
(`--split`, default train).
"""
