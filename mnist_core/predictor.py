"""Recognise drawings: preprocessing to MNIST's 28x28 and a fast forward pass.

``model.predict`` spends ~45 ms per call setting up a data pipeline; one image
needs none of that. One drawing at a time goes through the model's LiteRT copy
(~0.3 ms; see :mod:`mnist_core.litert`); batches through the model itself, as
evaluation does (:func:`~mnist_core.evaluation.predict_probabilities`). LiteRT
is also untouched by ``keras.backend.clear_session()``, which Streamlit calls
after every script run and which makes a TensorFlow graph rebuild its kernels
(~50 ms) at its next call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import keras
import numpy as np

from mnist_core.architectures import N_CLASSES, as_model_input
from mnist_core.card import ModelCard
from mnist_core.evaluation import predict_probabilities
from mnist_core.explain import Explainer, Explanation
from mnist_core.litert import LiteRTModel, to_litert
from mnist_core.preprocessing import Preprocessed, to_mnist
from mnist_core.store import DEFAULT_MODEL, ModelStore

# Below this top probability the page and the CLI say the model is not sure.
CONFIDENT = 0.8


@dataclass(frozen=True)
class Prediction:
    """What the model made of one drawing. ``digit`` is None when nothing was drawn."""

    digit: int | None
    probabilities: np.ndarray  # (10,) float, sums to 1; all zeros when nothing was drawn
    image: np.ndarray  # (28, 28) uint8, what the model saw
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    thick_strokes: bool = False  # strokes too thick for the digit's size to be read reliably

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max()) if self.digit is not None else 0.0

    @property
    def sure(self) -> bool:
        return self.digit is not None and self.confidence >= CONFIDENT

    def as_dict(self) -> dict:
        """JSON-ready: ``digit`` (int or None), ``probabilities`` (ten floats, or None) and ``thick_strokes``."""
        return {
            "digit": self.digit,
            "probabilities": None if self.digit is None else [round(float(p), 6) for p in self.probabilities],
            "thick_strokes": self.thick_strokes,
        }


class Predictor:
    """A loaded model ready to recognise drawings (canvas RGBA arrays, image arrays)."""

    def __init__(self, model: keras.Model, card: ModelCard | None = None, name: str | None = None,
                 litert: bytes | None = None):
        """``litert``: the model's LiteRT copy (see :mod:`mnist_core.litert`); made from ``model`` if not given."""
        self.model = model
        self.card = card
        self.name = name if name is not None else (card.name if card is not None else model.name)
        self._litert = litert

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, store: ModelStore | None = None) -> Predictor:
        """Load model ``name`` from the store (default: the ``models/`` folder)."""
        store = store if store is not None else ModelStore()
        model, card = store.load(name)
        return cls(model, card, name, litert=store.load_litert(name, card))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The forward pass alone: (N, 10) probabilities for uint8 MNIST-style images (N, 28, 28)."""
        if len(images) == 1:
            return self._forward_one(as_model_input(images))
        return predict_probabilities(self.model, images)

    def warm_up(self) -> None:
        """Make the one-drawing path ready now rather than at the first drawing (~2 s without a stored copy)."""
        self.probabilities(np.zeros((1, 28, 28), np.uint8))

    # Made at its first use, or by warm_up.
    @cached_property
    def _forward_one(self) -> LiteRTModel:
        return LiteRTModel(self._litert if self._litert is not None else to_litert(self.model))

    def predict(self, image: np.ndarray) -> Prediction:
        """Recognise one drawing or image (any size; grey, RGB or RGBA; either polarity)."""
        return self.predict_many([image])[0]

    def explain(self, image: np.ndarray) -> Explanation:
        """Why the model reads ``image`` (as :meth:`predict` takes it) as it does: the 28x28 input, the answer,
        saliency maps for the digit and the runner-up, and each layer with its feature maps
        (:mod:`mnist_core.explain`)."""
        prepared = to_mnist(image)
        probabilities = np.zeros(N_CLASSES, np.float32)
        if not prepared.blank:
            probabilities = self.probabilities(prepared.image[None])[0]
        return self._explainer.explain(prepared.image, probabilities)

    # Made at the first explanation (~1 s: it traces the saliency's graph).
    @cached_property
    def _explainer(self) -> Explainer:
        return Explainer(self.model)

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
    return Prediction(digit=digit, probabilities=probabilities, image=prepared.image, steps=prepared.steps,
                      thick_strokes=prepared.thick_strokes)
