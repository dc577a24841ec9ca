"""Adapt a saved model to one person's handwriting: a short fine-tune on their labelled drawings.

One function, :func:`finetune`, serves the page and ``python -m mnist_core finetune``. It

1. reads the drawings (:func:`read_drawings`): a class folder (``DIGIT/NAME.png`` or ``.jpg``, any size
   and polarity, each read as the page reads a picture: :func:`~mnist_core.preprocessing.read_image`, then
   :func:`~mnist_core.preprocessing.to_mnist`), such as a :class:`~mnist_core.drawings.DrawingStore`'s
   ``images_dir`` or its zip unpacked, or a Kaggle-format CSV of 28x28 digits (its ``csv_bytes``);
2. holds back part of them, stratified (:func:`hold_back`): of each digit drawn ``n`` times, ``n // 4``
   but at least one when ``n >= 2``, none when ``n == 1`` (a digit drawn once is trained on, not measured:
   with too few drawings no figure is given rather than one made up);
3. measures the base model on the held-back drawings, then fine-tunes every network of it
   (:func:`mnist_core.training.train` with ``base``, the engine ``train --base-model`` uses) for
   :data:`EPOCHS` epoch at the low :data:`LEARNING_RATE`, with augmentation, on the other drawings, each
   repeated to make :data:`DRAWING_SHARE` of the mix, and :data:`REPLAY` random MNIST training digits so
   that it does not forget MNIST;
4. measures the new model on the held-back drawings and on MNIST's test set, and saves it through
   :meth:`ModelStore.save <mnist_core.store.ModelStore.save>` with a card naming the base model and the
   drawings (``card.base_model``, ``card.adaptation``). Nothing is written unless all of it completes.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnist_core.architectures import N_CLASSES
from mnist_core.card import Adaptation, BaseModel, ModelCard, TrainingSource
from mnist_core.data import DataError, MnistData, load_kaggle_csv, load_mnist, with_extra_training
from mnist_core.drawings import MAX_TOTAL
from mnist_core.preprocessing import PREPROCESSING_VERSION, read_image, to_mnist
from mnist_core.progress import ProgressCallback
from mnist_core.settings import TrainingSettings
from mnist_core.store import ModelStore, check_name, file_sha256

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# At most this many drawings are read: a whole drawings folder (every user's) pooled by a teacher.
MAX_DRAWINGS = MAX_TOTAL
HOLD_BACK_FRACTION = 4  # of each digit's n drawings, n // 4 are held back (at least 1 when n >= 2)
# The fine-tune: one pass over REPLAY MNIST training digits and the drawings repeated to make DRAWING_SHARE
# of the mix, at a learning rate a tenth of a training's, augmented as training is. Measured on 20 writers
# the default was never trained on (benchmarks/bench_adapt.py, docs/teaching.md).
REPLAY = 4_000
DRAWING_SHARE = 1 / 3
EPOCHS = 1
LEARNING_RATE = 1e-4
BATCH_SIZE = 64


@dataclass(frozen=True)
class LabelledDrawings:
    """Drawings normalised to 28x28 (uint8, ink high) with their labels, and where they were read."""

    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) uint8
    source: str  # the folder or CSV read
    sha256: str  # see read_drawings

    @property
    def counts(self) -> list[int]:
        """How many drawings of each digit 0-9."""
        return np.bincount(self.labels, minlength=N_CLASSES).astype(int).tolist()


def read_drawings(path: str | os.PathLike) -> LabelledDrawings:
    """Labelled drawings from a class folder (``DIGIT/NAME.png``/``.jpg``) or a Kaggle-format ``.csv``.

    A folder's images go through the page's preprocessing; its ``sha256`` is that of the lines
    ``"SHA256  DIGIT/NAME\\n"`` of every file, sorted by path (what ``sha256sum */*`` prints, in the C locale's
    order). A CSV's digits are taken as they are (28x28, as ``DrawingStore.csv_bytes`` writes them); its
    ``sha256`` is the file's. DataError (a ValueError) naming the file or folder for anything that is not
    drawings of at least two digits: an empty folder, a folder not named 0-9, a file that is not an image,
    a blank image, more than :data:`MAX_DRAWINGS`.
    """
    path = Path(path)
    if path.is_dir():
        drawings = _read_folder(path)
    elif path.is_file() and path.suffix.lower() == ".csv":
        images, labels = load_kaggle_csv(path, labelled=True)
        if len(images) > MAX_DRAWINGS:
            raise DataError(f"{path}: {len(images):,} drawings, more than the {MAX_DRAWINGS:,} a fine-tune reads")
        drawings = LabelledDrawings(images, labels, str(path), file_sha256(path))
    elif not path.exists():
        raise DataError(f"{path}: no such file or folder (expected a folder of digit folders 0-9, or a .csv)")
    else:
        raise DataError(f"{path}: not a folder of digit folders 0-9 nor a Kaggle-format .csv")
    drawn = [digit for digit, n in enumerate(drawings.counts) if n]
    if len(drawn) < 2:
        raise DataError(f"{path}: only drawings of digit {drawn[0]} ({len(drawings.labels)}); a fine-tune needs "
                        "drawings of at least two digits, or it would learn to answer that digit to everything")
    return drawings


def _read_folder(folder: Path) -> LabelledDrawings:
    files = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue  # .DS_Store and the like
        if not entry.is_dir() or entry.name not in {str(d) for d in range(N_CLASSES)}:
            kind = "folder" if entry.is_dir() else "file"
            raise DataError(f"{folder}: holds the {kind} {entry.name!r}; a drawings folder holds only one folder "
                            "per digit, named 0 to 9, each holding that digit's PNG or JPEG images")
        for image in sorted(entry.iterdir()):
            if image.name.startswith("."):
                continue
            if image.suffix.lower() not in IMAGE_SUFFIXES or not image.is_file():
                raise DataError(f"{image}: not a PNG or JPEG image file; a digit's folder holds only its "
                                f"images ({', '.join(IMAGE_SUFFIXES)})")
            files.append((int(entry.name), image))
    if not files:
        raise DataError(f"{folder}: no drawings (expected folders 0 to 9 holding PNG or JPEG images)")
    if len(files) > MAX_DRAWINGS:
        raise DataError(f"{folder}: {len(files):,} drawings, more than the {MAX_DRAWINGS:,} a fine-tune reads")
    images, manifest = [], hashlib.sha256()
    for label, image in files:
        normalised = to_mnist(read_image(image))  # ImageError (a ValueError) names the file
        if normalised.blank:
            raise DataError(f"{image}: nothing is drawn in it (blank, or only a speck); remove it")
        images.append(normalised.image)
        manifest.update(f"{file_sha256(image)}  {label}/{image.name}\n".encode())
    labels = np.array([label for label, _ in files], np.uint8)
    return LabelledDrawings(np.stack(images), labels, str(folder), manifest.hexdigest())


def hold_back(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the drawings to fine-tune on and of those held back, stratified by digit (sorted arrays).

    Of each digit drawn ``n`` times, ``n // HOLD_BACK_FRACTION`` are held back, at least one when ``n >= 2``
    and none when ``n == 1``, chosen at random with ``seed``.
    """
    rng = np.random.default_rng(seed)
    held = []
    for digit in range(N_CLASSES):
        mine = np.flatnonzero(labels == digit)
        k = max(1, len(mine) // HOLD_BACK_FRACTION) if len(mine) >= 2 else 0
        held.extend(rng.choice(mine, size=k, replace=False).tolist())
    held = np.array(sorted(held), dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), held), held


def finetune(
    base: str,
    drawings: str | os.PathLike | LabelledDrawings,
    name: str,
    store: ModelStore | None = None,
    *,
    mnist: str | os.PathLike | MnistData | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    owner: str = "",
    command: str = "",
    seed: int = 0,
) -> ModelCard:
    """Fine-tune saved model ``base`` on ``drawings`` and save it as ``name`` in ``store``; return its card.

    ``drawings``: a folder or CSV for :func:`read_drawings`, or drawings it read. ``mnist``: where MNIST's
    training digits (the replay) and test set come from, as :func:`~mnist_core.data.load_mnist` takes it
    (default: ``$MNIST_DATA``), or the data loaded. ``progress``, ``stop``: as
    :func:`~mnist_core.workflow.train_and_save` takes them (``stop`` set: TrainingCancelled, nothing
    saved). ``owner``: the card's owner (the store refuses to replace another owner's model of that name).
    The card's ``adaptation`` holds the held-back accuracy before and after, ``test_error`` the MNIST test
    error. ValueError (DataError, ModelStoreError for the store) for bad input, before any training.
    """
    from mnist_core.architectures import networks
    from mnist_core.evaluation import predict_probabilities
    from mnist_core.training import TrainingCancelled, train
    from mnist_core.workflow import make_card

    store = store if store is not None else ModelStore()
    check_name(name)
    store.check_replaceable(name, owner)  # and again when it is saved
    if not isinstance(drawings, LabelledDrawings):
        drawings = read_drawings(drawings)
    base_model, base_card = store.load(base)
    data = mnist if isinstance(mnist, MnistData) else load_mnist(mnist)

    trained, held = hold_back(drawings.labels, seed)

    def accuracy(model) -> float | None:
        if not len(held):
            return None
        predicted = predict_probabilities(model, drawings.images[held]).argmax(axis=1)
        return 100.0 * float(np.mean(predicted == drawings.labels[held]))

    before = accuracy(base_model)
    mix = _training_mix(data, drawings, trained, seed)
    settings = TrainingSettings(
        base_card.training.architecture, epochs=EPOCHS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
        augment=True, validation_split=0, seed=seed, members=len(networks(base_model)), schedule="cosine",
        base_model=base,
    ).check()
    result = train(mix, settings, progress=progress, stop=stop, base=base_model)
    card = make_card(result, mix, name, command)  # measures the MNIST test error
    card.owner = owner
    card.base_model = BaseModel.of(base_card)
    card.adaptation = Adaptation(
        drawings=drawings.source, sha256=drawings.sha256, count=len(drawings.labels), trained=len(trained),
        held_back=len(held), accuracy_before=before, accuracy_after=accuracy(result.model),
        replay=len(mix.x_train) - mix.extra_sources[0].count, counts=drawings.counts)
    if stop is not None and stop.is_set():  # asked to stop while it was measured: still nothing saved
        raise TrainingCancelled("fine-tune stopped by request after training, before saving")
    store.save(result.model, card)
    return card


def _training_mix(data: MnistData, drawings: LabelledDrawings, trained: np.ndarray, seed: int) -> MnistData:
    """:data:`REPLAY` random MNIST training digits and the ``trained`` drawings, repeated to make
    :data:`DRAWING_SHARE` of the mix; MNIST's test set kept."""
    rng = np.random.default_rng(seed)
    replay = rng.choice(len(data.x_train), size=min(REPLAY, len(data.x_train)), replace=False)
    repeats = max(1, math.ceil(len(replay) * DRAWING_SHARE / (1 - DRAWING_SHARE) / len(trained)))
    base = replace(data, x_train=data.x_train[replay], y_train=data.y_train[replay], x_val=None, y_val=None,
                   extra_sources=(), extra_sha256="")
    source = TrainingSource("drawings", f"{len(trained)} labelled drawings, each {repeats} times (augmented)",
                            drawings.source, drawings.sha256, len(trained) * repeats, PREPROCESSING_VERSION)
    return with_extra_training(base, np.repeat(drawings.images[trained], repeats, axis=0),
                               np.repeat(drawings.labels[trained], repeats), [source])
