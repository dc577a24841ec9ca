"""Digit or not: a small network that says whether a 28x28 image (``to_mnist``'s output) holds a digit at all.

A digit model trained on digits only gives ten probabilities for anything,
and reads a letter or a scribble as a confident digit. This separate network
(~0.05 ms a drawing through its LiteRT copy) was trained on the digits of the
training sources against BHMSDS' symbols and synthetic scribbles, and against
pairs of digits read as one (:mod:`mnist_core.gate_training`); its score is
1 - P(digit), and its threshold was set so that almost no held-back digit is
refused. It ships in the model store's folder :data:`GATE_FOLDER` (a folder, so
the store, which lists files, does not take it for a digit model): ``not-a-digit.keras``, its LiteRT copy and
``not-a-digit.json``, its card (data, checksums, measured figures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from mnist_core.architectures import as_model_input
from mnist_core.store import default_models_dir, file_sha256

GATE_FOLDER = "not-a-digit"
GATE_NAME = "not-a-digit"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models"
TRAIN_COMMAND = "python -m mnist_core.gate_training"


@dataclass(frozen=True)
class DigitGate:
    """The digit-or-not network: :meth:`probabilities` of digit, not a digit and two digits.

    ``threshold``: at or above its score, 1 - P(digit), an image is called not a digit (set at training
    from held-back digits; see the card's ``threshold_rule``).
    """

    flatbuffer: bytes
    threshold: float
    card: dict

    @classmethod
    def load(cls, directory: str | Path | None = None) -> DigitGate:
        """The gate in ``directory/not-a-digit/`` (default: the model store's folder, else the shipped ``models/``).

        Raises FileNotFoundError saying how to make one, or ValueError when the
        LiteRT copy is not the one its card records.
        """
        candidates = [Path(directory)] if directory is not None else [default_models_dir(), SHIPPED_DIR]
        for folder in candidates:
            card_path = folder / GATE_FOLDER / f"{GATE_NAME}.json"
            litert_path = card_path.with_suffix(".tflite")
            if card_path.is_file() and litert_path.is_file():
                card = json.loads(card_path.read_text())
                if file_sha256(litert_path) != card["files"]["tflite_sha256"]:
                    raise ValueError(f"{litert_path}: sha256 differs from its card's; retrain with {TRAIN_COMMAND}")
                return cls(litert_path.read_bytes(), float(card["threshold"]), card)
        where = " or ".join(str(folder / GATE_FOLDER) for folder in candidates)
        raise FileNotFoundError(f"no digit-or-not network in {where}; make one with {TRAIN_COMMAND}")

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """(3,): one 28x28 uint8 image (ink high, as ``to_mnist`` gives) is a digit, not a digit, two digits."""
        return self._run(as_model_input(image[None]))[0]

    # Made at the first use: a LiteRT interpreter (a few ms).
    @cached_property
    def _run(self):
        from mnist_core.litert import LiteRTModel

        return LiteRTModel(self.flatbuffer, classes=3)
