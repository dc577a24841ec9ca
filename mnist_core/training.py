"""Train any architecture of the zoo, reporting progress and stopping on request.

The engine is Keras' own ``model.fit`` on a ``tf.data`` pipeline, with one
callback that turns Keras' logs into :class:`TrainingProgress` reports and
checks a stop flag between batches. The command line and the page both watch
training through that one interface.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import keras
import numpy as np
import tensorflow as tf

from mnist_core.architectures import as_model_input, build, ensemble
from mnist_core.architectures import networks as architecture_networks
from mnist_core.augmentation import augment_batch
from mnist_core.data import MnistData, split_validation
from mnist_core.evaluation import predict_probabilities
from mnist_core.progress import ProgressCallback, TrainingProgress, Watched
from mnist_core.settings import TrainingSettings


class TrainingCancelled(Exception):
    """Training was stopped on request before it finished; nothing was produced."""




@dataclass
class TrainingResult:
    """A trained model with its history (per epoch, of the last member for an ensemble)."""

    model: keras.Model
    settings: TrainingSettings
    history: dict[str, list[float]] = field(default_factory=dict)
    member_histories: list[dict[str, list[float]]] = field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0
    n_train: int = 0
    n_validation: int = 0
    validation_error: float | None = None  # percent


def make_dataset(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, augment: bool, seed: int
) -> tf.data.Dataset:
    """A batched tf.data pipeline over uint8 images, augmented on the fly when asked.

    The images stay uint8 in one tensor and each batch is gathered from it by shuffled indices, then made the
    models' float input: slicing the float images themselves copied 4x the bytes into the pipeline and its
    shuffle buffer (~1 s of every training on all of MNIST, bench_time_to_99). Same seed, same order as before.
    """
    images = tf.constant(np.asarray(x, np.uint8)[..., None])
    labels = tf.constant(np.asarray(y).astype(np.int32))
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda i: (tf.cast(tf.gather(images, i), tf.float32) / 255.0, tf.gather(labels, i)))
    if augment:
        ds = ds.map(lambda images, labels: (augment_batch(images), labels), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_model(model: keras.Model, learning_rate: float, total_steps: int, schedule: str) -> None:
    """Adam on sparse cross-entropy; with ``schedule`` "cosine", a learning rate decaying over ``total_steps``."""
    schedule = (
        keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps, alpha=0.01)
        if schedule == "cosine"
        else learning_rate
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def train(
    data: MnistData,
    settings: TrainingSettings,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    *,
    base: keras.Model | None = None,
    watch: np.ndarray | None = None,
) -> TrainingResult:
    """Train ``settings.architecture`` on ``data.x_train``; validate on ``data.x_val`` or a seeded split.

    With ``base`` (a trained model of the same architecture and number of
    members), each network starts from its weights instead of random ones: a
    fine-tuning. Calls ``progress`` after every batch and epoch; an epoch's
    last report carries :class:`Watched`: the first layer's filters and, given
    ``watch`` (a 28x28 uint8 MNIST-style image), the network's probabilities
    for it at that moment ("watch it learn your digit"). Setting
    ``stop`` ends the run after the current batch and raises
    :class:`TrainingCancelled`.
    """
    x_train, y_train, x_val, y_val = _train_validation(data, settings)
    settings.check(len(x_train))
    starting_weights = _member_weights(base, settings) if base is not None else None
    started = time.perf_counter()
    members, histories = [], []
    for member in range(settings.members):
        keras.utils.set_random_seed(settings.seed + member)
        model = build(settings.architecture)
        if starting_weights is not None:
            model.set_weights(starting_weights[member])
        train_ds = make_dataset(
            x_train, y_train, settings.batch_size, shuffle=True, augment=settings.augment, seed=settings.seed + member
        )
        val_ds = make_dataset(x_val, y_val, 1000, shuffle=False, augment=False, seed=0) if len(x_val) else None
        batches = len(train_ds)
        compile_model(model, settings.learning_rate, settings.epochs * batches, settings.resolved_schedule)
        reporter = _ProgressReporter(settings, member, batches, len(x_train), progress, stop, started, watch)
        history = model.fit(
            train_ds, validation_data=val_ds, epochs=settings.epochs, verbose=0, callbacks=[reporter], shuffle=False
        )
        if reporter.cancelled:
            raise TrainingCancelled(f"training stopped by request in epoch {reporter.epoch} of {settings.epochs}")
        members.append(_without_optimizer(model, settings.architecture))
        histories.append({k: [float(v) for v in vals] for k, vals in history.history.items()})

    model = members[0] if len(members) == 1 else ensemble(members, name=f"{settings.architecture}_x{len(members)}")
    validation_error = None
    if len(x_val):
        predicted = predict_probabilities(model, x_val).argmax(axis=1)
        validation_error = 100.0 * float(np.mean(predicted != y_val))
    return TrainingResult(
        model=model,
        settings=settings,
        history=histories[-1],
        member_histories=histories,
        epochs_run=settings.epochs,
        seconds=time.perf_counter() - started,
        n_train=len(x_train),
        n_validation=len(x_val),
        validation_error=validation_error,
    )


def _member_weights(base: keras.Model, settings: TrainingSettings) -> list[list[np.ndarray]]:
    """The weights of each network of ``base`` (one, or each member of an ensemble), checked against ``settings``."""
    networks = architecture_networks(base)
    if len(networks) != settings.members:
        raise ValueError(f"the base model has {len(networks)} network(s); set members to {len(networks)}, "
                         f"got {settings.members}")
    reference = build(settings.architecture)
    for network in networks:
        shapes = [w.shape for w in network.get_weights()]
        if shapes != [w.shape for w in reference.get_weights()]:
            raise ValueError(f"the base model is not a {settings.architecture!r} network (or ensemble of them); "
                             "fine-tune it with its own architecture")
    return [network.get_weights() for network in networks]


def _without_optimizer(model: keras.Model, architecture: str) -> keras.Model:
    """A copy holding only the weights: the saved file need not carry Adam's state (3x the size)."""
    copy = build(architecture)
    copy.set_weights(model.get_weights())
    return copy


def _train_validation(data: MnistData, settings: TrainingSettings):
    if data.x_val is not None and len(data.x_val):
        return data.x_train, data.y_train, data.x_val, data.y_val
    if settings.validation_split > 0:
        return split_validation(data.x_train, data.y_train, settings.validation_split, settings.seed)
    empty = np.zeros((0, 28, 28), np.uint8)
    return data.x_train, data.y_train, empty, np.zeros((0,), np.uint8)


class _ProgressReporter(keras.callbacks.Callback):
    """Turns Keras' per-batch logs into TrainingProgress reports and honours the stop flag."""

    # Keras runs the batch hooks of an async-safe callback in worker threads, so
    # the training loop never waits for them (nor for its logs to reach Python):
    # without this, small networks train ~20% slower. Reports of one epoch may
    # therefore arrive slightly out of order; Keras finishes them all before
    # the epoch ends.
    async_safe = True

    def __init__(self, settings, member, batches, n_train, progress, stop, started, watch=None):
        super().__init__()
        self.watch = None if watch is None else as_model_input(watch)
        self.settings, self.member, self.batches, self.n_train = settings, member, batches, n_train
        self.progress, self.stop, self.started = progress, stop, started
        self.cancelled = False
        self.epoch = 0
        self.member_started = time.perf_counter()
        self._lock = threading.Lock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.stop is not None and self.stop.is_set():
            self.cancelled = True
            self.model.stop_training = True
        if self.progress is not None:
            report = self._report(batch + 1, logs or {}, epoch_end=False)
            with self._lock:  # one report at a time, whichever thread runs it
                self.progress(report)

    def on_epoch_end(self, epoch, logs=None):
        if self.progress is not None and not self.cancelled:
            report = self._report(self.batches, logs or {}, epoch_end=True)
            self.progress(replace(report, watched=self._watched()))

    def _watched(self) -> Watched:
        probabilities = None
        if self.watch is not None:
            probabilities = tuple(round(float(p), 5) for p in np.asarray(self.model(self.watch, training=False))[0])
        first = next((layer for layer in self.model.layers if isinstance(layer, keras.layers.Conv2D)), None)
        if first is None:
            return Watched(probabilities, None)
        kernels = first.get_weights()[0]  # (k, k, 1, F)
        filters = tuple(map(tuple, kernels[:, :, 0, :].reshape(-1, kernels.shape[-1]).T.round(4).tolist()))
        return Watched(probabilities, filters, kernels.shape[0])

    def _report(self, batch: int, logs: dict, epoch_end: bool) -> TrainingProgress:
        s = self.settings
        now = time.perf_counter()
        images_done = min(((self.epoch - 1) * self.batches + batch) * s.batch_size, self.epoch * self.n_train)
        rate = images_done / max(now - self.member_started, 1e-9)
        total_images = s.members * s.epochs * self.n_train
        done_images = self.member * s.epochs * self.n_train + images_done
        val_loss, val_acc = logs.get("val_loss"), logs.get("val_accuracy")
        return TrainingProgress(
            member=self.member + 1,
            members=s.members,
            epoch=self.epoch,
            epochs=s.epochs,
            batch=batch,
            batches=self.batches,
            loss=float(logs.get("loss", float("nan"))),
            accuracy=float(logs.get("accuracy", float("nan"))),
            val_loss=None if val_loss is None else float(val_loss),
            val_accuracy=None if val_acc is None else float(val_acc),
            images_per_second=rate,
            seconds_elapsed=now - self.started,
            seconds_left=(total_images - done_images) / max(rate, 1e-9),
            epoch_end=epoch_end,
        )
