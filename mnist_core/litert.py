"""A model's LiteRT copy: the same network, run on one image in a fraction of a millisecond.

For a single 28x28 image TensorFlow's own runtime is the slow part: even an
XLA-compiled graph of the default ensemble takes ~1 ms, where LiteRT's XNNPACK
kernels do the same arithmetic in ~0.3 ms and give the same probabilities (to
~1e-6; see tests/test_litert.py). Converting takes ~2 s, so the store keeps the
copy beside the ``.keras`` file (``models/NAME.tflite``) rather than making it
at every start.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from mnist_core.architectures import INPUT_SHAPE


def to_litert(model: keras.Model) -> bytes:
    """Convert ``model`` to a LiteRT flatbuffer taking one (1, 28, 28, 1) float32 image."""
    with tempfile.TemporaryDirectory(prefix="mnist-litert-") as folder:
        path = Path(folder) / "model.tflite"
        model.export(path, format="litert", verbose=False,
                     input_signature=[tf.TensorSpec((1, *INPUT_SHAPE), tf.float32)])
        return path.read_bytes()


class LiteRTModel:
    """A LiteRT flatbuffer ready to run: ``model(images)`` maps (1, 28, 28, 1) float32 to (1, ``classes``).

    Safe to call from several threads (the page serves every session from one
    predictor): calls take turns, each ~0.3 ms. ``classes``: 10 for a digit
    model, 3 for the digit-or-not network (:mod:`mnist_core.gate`).
    """

    def __init__(self, flatbuffer: bytes, threads: int | None = None, classes: int = 10):
        threads = threads if threads is not None else min(2, os.cpu_count() or 1)
        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
        self._interpreter.allocate_tensors()
        (source,) = self._interpreter.get_input_details()
        (target,) = self._interpreter.get_output_details()
        takes, gives = tuple(source["shape"].tolist()), tuple(target["shape"].tolist())
        if takes != (1, *INPUT_SHAPE) or gives != (1, classes):
            raise ValueError(f"not a LiteRT copy of an MNIST model: it maps {takes} to {gives}, "
                             f"not (1, 28, 28, 1) to (1, {classes})")
        self._input, self._output = source["index"], target["index"]
        self._lock = threading.Lock()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        with self._lock:
            self._interpreter.set_tensor(self._input, np.asarray(images, np.float32))
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output)
