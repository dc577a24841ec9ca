"""Measure a model on a labelled test set: error, per-class error, confusion matrix, mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from mnist_core.architectures import N_CLASSES, as_model_input


@dataclass(frozen=True)
class Evaluation:
    """What a model got right and wrong on ``n_test`` labelled images."""

    test_error: float  # percent
    n_test: int
    per_class_error: list[float]  # percent, by true class
    confusion: np.ndarray  # (10, 10) counts, rows = true class, columns = predicted
    misclassified: np.ndarray  # indices into the test set
    predicted: np.ndarray  # (n_test,) predicted class

    def summary(self) -> dict:
        """A JSON-ready dict of the figures (indices and counts as plain ints)."""
        return {
            "test_error": round(self.test_error, 4),
            "n_test": self.n_test,
            "per_class_error": [round(e, 4) for e in self.per_class_error],
            "confusion": self.confusion.tolist(),
            "misclassified": self.misclassified.tolist(),
        }


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, 10) for uint8 MNIST-convention images (N, 28, 28)."""
    outputs = [
        np.asarray(model(as_model_input(images[i : i + batch_size]), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, N_CLASSES), np.float32)


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Evaluate ``model`` on uint8 ``images`` (N, 28, 28) with true ``labels`` (N,)."""
    if len(images) == 0:
        raise ValueError("cannot evaluate on an empty test set")
    labels = np.asarray(labels).astype(np.int64)
    predicted = predict_probabilities(model, images).argmax(axis=1)
    confusion = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class_total = confusion.sum(axis=1)
    per_class_wrong = per_class_total - np.diag(confusion)
    per_class_error = [
        100.0 * wrong / total if total else float("nan")
        for wrong, total in zip(per_class_wrong, per_class_total, strict=True)
    ]
    misclassified = np.flatnonzero(predicted != labels)
    return Evaluation(
        test_error=100.0 * len(misclassified) / len(labels),
        n_test=len(labels),
        per_class_error=per_class_error,
        confusion=confusion,
        misclassified=misclassified,
        predicted=predicted,
    )
