"""`BackgroundPredictor`: a saved model that loads in a thread while faces are found.

Loading the default model (importing torch, building the members, preparing their scoring
copies) is about 2 s of every `unmask detect`, and finding faces needs none of it: only the
model's PreprocessSpec and what else it reads (landmarks, native-pixel tiles), which
model.json says. So `unmask detect` reads model.json, starts decoding and face detection at
once, and the first batch to score waits for the network (issue 13):

    pred = BackgroundPredictor(model_dir)   # model.json read and checked now; load starts
    pred.spec, pred.needs, pred.threshold   # available at once
    pred.predict(faces)                     # waits for the load, then scores
    pred.ready()                            # the loaded predictor; re-raises a load error

Any other attribute (`members`, `model`, ...) waits for the load and comes from the loaded
predictor. A load error is raised by the first call that needs the network.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmask.data.extract import Face
from unmask.errors import UnmaskError
from unmask.inference.loader import load_predictor, saved_needs
from unmask.inference.predictor import Predictor, SavedPredictor, Scores
from unmask.modelfile import read_saved_model


class BackgroundPredictor(SavedPredictor):
    def __init__(
        self, model_dir: str | Path, device: str = "cpu", runtime: str | None = None
    ) -> None:
        super().__init__(model_dir, read_saved_model(model_dir))
        self.needs = saved_needs(self.model_dir, self.saved)
        self._loaded: Predictor | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._load, args=(device, runtime), name="unmask-load-model", daemon=True
        )
        self._thread.start()

    def _load(self, device: str, runtime: str | None) -> None:
        import gc
        import sys

        # Loading torch and the model allocates ~750k objects that live for the whole run:
        # collecting as they come is a quarter of the load's CPU, and freezing them keeps
        # later collections from walking them again.
        gc.disable()
        # Importing torch beside MediaPipe threads can print a one-off kernel-registration
        # warning and TFLite INFO lines straight to file descriptor 2; nothing else is
        # printed while the model loads (the first batch waits for it), so it is silenced
        # like MediaPipe's graph start-up (UNMASK_DEBUG=1 shows it).
        from unmask.data.faces import native_stderr_silenced

        warnings: list[str] = []  # said after the silenced load, which would swallow them
        try:
            with native_stderr_silenced():
                pred = load_predictor(
                    self.model_dir, device=device, runtime=runtime, warn=warnings.append
                )
            for msg in warnings:  # a fall-back to torch, a refused cached ONNX graph
                print(f"unmask: warning: {msg}", file=sys.stderr)
            if pred.needs != self.needs:  # model.json and the built model must agree
                raise UnmaskError(f"{self.model_dir}: the model's inputs differ from model.json")
            self._loaded = pred
        except BaseException as exc:  # re-raised in the caller's thread by ready()
            self._error = exc
        finally:
            gc.enable()
            gc.freeze()

    def ready(self) -> Predictor:
        """The loaded predictor (waits for it); the load's error, if it failed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._loaded is not None
        return self._loaded

    def predict(self, faces: Sequence[Face]) -> Scores:
        return self.ready().predict(faces)

    def predict_proba(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        return self.ready().predict_proba(crops, landmarks)

    def embed(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray:
        return self.ready().embed(crops, landmarks)

    def __getattr__(self, name: str) -> Any:  # only for names not set above
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.ready(), name)
