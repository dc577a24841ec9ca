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
from mnist_core.gate import DigitGate
from mnist_core.litert import LiteRTModel, to_litert
from mnist_core.numbers import Region, read_regions
from mnist_core.preprocessing import Preprocessed, to_mnist
from mnist_core.store import DEFAULT_MODEL, ModelStore

# Below this top probability the page and the CLI say the model is not sure. Measured, not guessed
# (benchmarks/bench_numbers.py, docs/honest-answers.md): the lowest threshold above which answers were
# right 99% of the time on every held-out source (half of each; the other half checks it).
CONFIDENT = 0.85


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


@dataclass(frozen=True)
class NumberReading:
    """What the model made of a drawing of one digit or several side by side (:meth:`Predictor.predict_number`).

    ``digits``: each digit found, left to right, with its own probabilities
    (empty when nothing was drawn); ``boxes``: where each is, (left, top, right,
    bottom) in the image's pixels; ``not_a_digit_scores``: the digit-or-not
    network's score of each (:mod:`mnist_core.gate`); ``not_a_digit``: some
    part of the drawing does not look like a digit, and ``digits`` are then
    only the model's best guess.
    """

    digits: list[Prediction]
    boxes: list[tuple[int, int, int, int]]
    not_a_digit_scores: list[float]
    not_a_digit: bool

    @property
    def number(self) -> str | None:
        """The digits read left to right ("17", or "7" for one); None when nothing is drawn or it is not a digit."""
        return None if self.not_a_digit or not self.digits else self.guess

    @property
    def digit(self) -> int | None:
        """The digit when the drawing is one digit, else None."""
        return self.digits[0].digit if self.number is not None and len(self.digits) == 1 else None

    @property
    def guess(self) -> str | None:
        """The model's best reading even when it is not a digit (not an answer to show as one); None when blank."""
        return "".join(str(d.digit) for d in self.digits) if self.digits else None

    @property
    def sure(self) -> bool:
        """A number whose every digit is sure."""
        return self.number is not None and all(d.sure for d in self.digits)

    def as_dict(self) -> dict:
        """JSON-ready: ``digit``, ``probabilities`` and ``thick_strokes`` as :meth:`Prediction.as_dict` gives them
        for one digit (``probabilities`` also for one thing that is not a digit: the best guess's), ``number``,
        ``not_a_digit``, ``guess`` and ``digits``: each one's ``digit``, ``probabilities``, ``thick_strokes``,
        ``not_a_digit_score`` and ``box``."""
        one = self.digits[0].as_dict() if len(self.digits) == 1 else {"probabilities": None}
        return {
            "digit": self.digit,
            "probabilities": one["probabilities"],
            "thick_strokes": any(d.thick_strokes for d in self.digits),
            "number": self.number,
            "not_a_digit": self.not_a_digit,
            "guess": self.guess,
            "digits": [{**d.as_dict(), "not_a_digit_score": round(score, 6), "box": list(box)}
                       for d, box, score in zip(self.digits, self.boxes, self.not_a_digit_scores, strict=True)],
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

    def predict_number(self, image: np.ndarray) -> NumberReading:
        """Read a drawing of one digit or several side by side (a year, a postcode), as :meth:`predict` takes it.

        The digits are found (:mod:`mnist_core.numbers`), each normalised by
        ``to_mnist`` and read by this model; each is also scored by the
        digit-or-not network (:mod:`mnist_core.gate`, loaded at the first call).
        A drawing of one digit gets :meth:`predict`'s probabilities.
        """
        prepared = to_mnist(image)
        regions = read_regions(prepared, self._classify)
        # Boxes are in the ink's pixels, which to_mnist shrinks from images larger than MAX_INPUT_SIDE.
        scale = max(np.shape(image)[:2]) / max(prepared.steps["ink"].shape)
        return _number_reading(regions, self._gate.threshold, scale)

    def _classify(self, prepared: list[Preprocessed]) -> tuple[np.ndarray, np.ndarray]:
        """Digit probabilities (N, 10) and the digit-or-not network's (N, 3) of ``to_mnist`` results, one at a time."""
        probabilities, gate = np.zeros((len(prepared), N_CLASSES), np.float32), np.zeros((len(prepared), 3), np.float32)
        gate[:, 1] = 1.0  # a crop of faint ink only is blank: nothing to read, and the reading will not choose it
        for i, p in enumerate(prepared):
            if not p.blank:
                probabilities[i] = self._forward_one(as_model_input(p.image[None]))[0]
                gate[i] = self._gate.probabilities(p.image)
        return probabilities, gate

    # Loaded at the first number read: the model store's copy, else the shipped one.
    @cached_property
    def _gate(self) -> DigitGate:
        return DigitGate.load()

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


def _number_reading(regions: list[Region], threshold: float, scale: float) -> NumberReading:
    digits = [_prediction(r.prepared, r.probabilities) for r in regions]
    boxes = [tuple(int(round(v * scale)) for v in r.box) for r in regions]
    scores = [r.not_a_digit for r in regions]
    return NumberReading(digits, boxes, scores, any(score >= threshold for score in scores))


def _prediction(prepared: Preprocessed, probabilities: np.ndarray) -> Prediction:
    digit = None if prepared.blank else int(probabilities.argmax())
    return Prediction(digit=digit, probabilities=probabilities, image=prepared.image, steps=prepared.steps,
                      thick_strokes=prepared.thick_strokes)
