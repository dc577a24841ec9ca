"""Train, measure on the test set, write the card and save: one call for the CLI and the page."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import keras
import tensorflow as tf

from mnist_core.data import MnistData
from mnist_core.evaluation import evaluate
from mnist_core.settings import TrainingSettings
from mnist_core.store import ModelCard, ModelStore, check_name
from mnist_core.training import ProgressCallback, TrainingResult, train


def train_and_save(
    data: MnistData,
    settings: TrainingSettings,
    name: str,
    store: ModelStore | None = None,
    *,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    command: str = "",
) -> ModelCard:
    """Train on ``data``, measure on its test set, save as ``name`` with its card; return the card.

    Nothing is written unless training completes: a cancelled or failed run
    leaves the store as it was.
    """
    check_name(name)
    settings.check(len(data.x_train))
    store = store if store is not None else ModelStore()
    result = train(data, settings, progress=progress, stop=stop)
    card = make_card(result, data, name, command)
    store.save(result.model, card)
    return card


def make_card(result: TrainingResult, data: MnistData, name: str, command: str = "") -> ModelCard:
    """The card of a freshly trained model, with its error measured on ``data``'s test set."""
    measured = evaluate(result.model, data.x_test, data.y_test)
    s = result.settings
    return ModelCard(
        name=name,
        architecture=s.architecture if s.members == 1 else f"{s.architecture} x{s.members}",
        parameters=int(result.model.count_params()),
        training={
            "epochs": s.epochs,
            "batch_size": s.batch_size,
            "learning_rate": s.learning_rate,
            "augment": s.augment,
            "validation_split": s.validation_split,
            "seed": s.seed,
            "members": s.members,
            "schedule": "cosine" if s.cosine else "constant",
        },
        data={"source": data.source, "sha256": data.sha256, "n_train": result.n_train,
              "n_validation": result.n_validation,
              **({"extra_source": data.extra_source, "extra_sha256": data.extra_sha256} if data.extra_source else {})},
        test_set={"source": data.source, "sha256": data.sha256, "n_test": measured.n_test},
        epochs_run=result.epochs_run,
        validation_error=result.validation_error,
        test_error=measured.test_error,
        per_class_error=measured.summary()["per_class_error"],
        confusion=measured.confusion.tolist(),
        misclassified=measured.misclassified.tolist(),
        history=result.history,
        training_seconds=round(result.seconds, 1),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tensorflow=tf.__version__,
        keras=keras.__version__,
        command=command,
    )
