"""Train, measure on the test set, write the card and save: one call for the CLI and the page.

The one place where training, evaluation, the card and the store meet (none of them knows the others).
Kept under this name rather than its function's, ``train_and_save``: a module of that name would shadow
the function in ``mnist_core``'s namespace (``from mnist_core import train_and_save``).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timezone

import keras
import tensorflow as tf

from mnist_core.card import BaseModel, ModelCard, TestSet, TrainingData
from mnist_core.data import MnistData
from mnist_core.evaluation import evaluate
from mnist_core.preprocessing import PREPROCESSING_VERSION
from mnist_core.settings import TrainingSettings
from mnist_core.sources import with_training_sources
from mnist_core.store import ModelStore, check_name
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
    watch=None,
    owner: str = "",
) -> ModelCard:
    """Train on ``data`` and the sources ``settings`` adds, measure on its test set, save as ``name``; return the card.

    Nothing is written unless training completes: a cancelled or failed run
    leaves the store as it was. ``watch``: a 28x28 image whose probabilities each epoch's
    last report carries (see :func:`~mnist_core.training.train`). ``owner``: who trains it (the card's
    ``owner``); the store refuses to replace another owner's model of that name.
    """
    check_name(name)
    settings.check(len(data.x_train))
    store = store if store is not None else ModelStore()
    base, base_card = store.load(settings.base_model) if settings.base_model else (None, None)
    data = with_training_sources(data, settings)
    result = train(data, settings, progress=progress, stop=stop, base=base, watch=watch)
    card = make_card(result, data, name, command)
    card.owner = owner
    if base_card is not None:
        card.base_model = BaseModel.of(base_card)
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
        training=replace(s, schedule=s.resolved_schedule),
        data=TrainingData(data.source, data.sha256, result.n_train, result.n_validation, data.extra_sources,
                          data.extra_sha256),
        preprocessing=PREPROCESSING_VERSION,
        test_set=TestSet(data.source, data.sha256, measured.n_test),
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
