"""DetectorModule takes its settings by name; `detector_module` reads them off a config and
logs that config with the checkpoints (no training here: seconds)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _cfg(*overrides: str):
    from unmask.config import load_config
    from unmask.training.config import TrainConfig

    sets = ["data.manifest=unused.csv", "data.input_size=32", "detector.name=resnet18"]
    return load_config(TrainConfig, None, overrides=sets + list(overrides))


def test_module_uses_the_arguments_it_is_given():
    from unmask.training.config import OptimConfig
    from unmask.training.engine import DetectorModule, detector_spec

    spec = detector_spec(_cfg())
    optim = OptimConfig(optimizer="sgd", lr=0.25, weight_decay=0.0, schedule="none")
    module = DetectorModule(
        spec,
        num_classes=3,
        pretrained=False,
        optim=optim,
        max_epochs=4,
        class_weights=[1.0, 2.0, 3.0],
    )
    assert module(torch.zeros(2, 3, 32, 32)).shape == (2, 3)  # num_classes reached the head
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == 0.25
    assert module.class_weights.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError):  # by name only: a config blob is no longer accepted
        DetectorModule(spec, _cfg())


def test_detector_module_reads_the_config_and_logs_it():
    from unmask.training.engine import detector_module, detector_spec

    cfg = _cfg(
        "optim.lr=0.5",
        "optim.schedule=cosine",
        "trainer.max_epochs=6",
        "trainer.channels_last=true",
        "data.num_classes=3",
    )
    module = detector_module(cfg, detector_spec(cfg))
    assert module.max_epochs == 6 and module.optim == cfg.optim and module.channels_last
    assert module.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    sched = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert sched.optimizer.param_groups[0]["initial_lr"] == 0.5
    logged = module.hparams["config"]
    assert logged["optim"]["lr"] == 0.5 and logged["trainer"]["max_epochs"] == 6
