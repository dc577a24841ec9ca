"""Recognise drawings: preprocessing to MNIST's 28x28 and a compiled forward pass.

``model.predict`` spends ~45 ms per call setting up a data pipeline; one image
needs none of that. The predictor traces the model once into a TensorFlow
graph and calls it directly, which takes about a millisecond.

One image at a time goes through an XLA-compiled copy of that graph. Streamlit
calls ``keras.backend.clear_session()`` after every script run, which empties
TensorFlow's kernel cache: a plain graph then spends ~55 ms rebuilding its
kernels on its next call, at every stroke on the page; XLA's compiled program
is not in that cache and answers in ~1.5 ms (see benchmarks/bench_predictor.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import keras
import numpy as np
import tensorflow as tf

from mnist_core.architectures import INPUT_SHAPE, N_CLASSES, as_model_input
from mnist_core.preprocessing import Preprocessed, to_mnist
from mnist_core.store import DEFAULT_MODEL, ModelCard, ModelStore

# Below this top probability the page and the CLI say the model is not sure.
CONFIDENT = 0.8


def tune_threads_for_single_images() -> bool:
    """Set TensorFlow up for one image at a time: single-threaded kernels, independent ops in parallel.

    For a batch of one, TensorFlow's default (every kernel spread over all
    cores) spends more time waking and spinning threads than computing: on 2
    cores a drawing takes ~2.3 ms that way and ~1.7 ms this way (see
    benchmarks/bench_predictor.py). It is process-wide and must come before
    TensorFlow runs anything; returns False, changing nothing, when it is too
    late. The page and ``predict`` call it; a notebook may too. Training, which
    wants every core for its batches, runs in its own process.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(2)
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True)
class Prediction:
    """What the model made of one drawing. ``digit`` is None when nothing was drawn."""

    digit: int | None
    probabilities: np.ndarray  # (10,) float, sums to 1; all zeros when nothing was drawn
    image: np.ndarray  # (28, 28) uint8, what the model saw
    steps: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max()) if self.digit is not None else 0.0

    @property
    def sure(self) -> bool:
        return self.digit is not None and self.confidence >= CONFIDENT

    def as_dict(self) -> dict:
        """JSON-ready: ``digit`` (int or None) and ``probabilities`` (ten floats, or None)."""
        return {
            "digit": self.digit,
            "probabilities": None if self.digit is None else [round(float(p), 6) for p in self.probabilities],
        }


class Predictor:
    """A loaded model ready to recognise drawings (canvas RGBA arrays, image arrays)."""

    def __init__(self, model: keras.Model, card: ModelCard | None = None, name: str | None = None):
        self.model = model
        self.card = card
        self.name = name if name is not None else (card.name if card is not None else model.name)

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, store: ModelStore | None = None) -> Predictor:
        """Load model ``name`` from the store (default: the ``models/`` folder)."""
        store = store if store is not None else ModelStore()
        model, card = store.load(name)
        return cls(model, card, name)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The forward pass alone: (N, 10) probabilities for uint8 MNIST-style images (N, 28, 28)."""
        forward = self._forward_one if len(images) == 1 else self._forward_many
        return forward(tf.constant(as_model_input(images))).numpy()

    def warm_up(self) -> None:
        """Compile the one-drawing path now (~0.3 s) rather than at the first drawing."""
        self.probabilities(np.zeros((1, 28, 28), np.uint8))

    # Each forward pass is traced (and compiled) at its first use, or by warm_up. A concrete
    # function skips tf.function's per-call signature matching (~0.1 ms).
    @cached_property
    def _forward_one(self):
        return self._concrete(batch=1, jit_compile=True)

    @cached_property
    def _forward_many(self):
        return self._concrete(batch=None, jit_compile=False)

    def _concrete(self, batch: int | None, jit_compile: bool):
        return tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((batch, *INPUT_SHAPE), tf.float32)],
            jit_compile=jit_compile,
        ).get_concrete_function()

    def predict(self, image: np.ndarray) -> Prediction:
        """Recognise one drawing or image (any size; grey, RGB or RGBA; either polarity)."""
        return self.predict_many([image])[0]

    def predict_many(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """Recognise several drawings in one forward pass."""
        prepared = [to_mnist(image) for image in images]
        drawn = [i for i, p in enumerate(prepared) if not p.blank]
        probabilities = np.zeros((len(prepared), N_CLASSES), np.float32)
        if drawn:
            probabilities[drawn] = self.probabilities(np.stack([prepared[i].image for i in drawn]))
        return [_prediction(p, probabilities[i]) for i, p in enumerate(prepared)]


def _prediction(prepared: Preprocessed, probabilities: np.ndarray) -> Prediction:
    digit = None if prepared.blank else int(probabilities.argmax())
    return Prediction(digit=digit, probabilities=probabilities, image=prepared.image, steps=prepared.steps)
