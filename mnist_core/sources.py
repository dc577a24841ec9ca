"""Training digits beyond MNIST's: real handwriting of other writers, and styles MNIST lacks.

Each source is one entry of :data:`EXTRA_SOURCES` (real digits from a
handwriting folder like ``../shared/data``) or :data:`SYNTHETIC_SOURCES`
(copies of training digits redrawn in a style MNIST's writers hardly used).
:func:`with_training_sources` adds the ones a :class:`TrainingSettings` names to
the training set, every digit normalised by
:func:`~mnist_core.preprocessing.to_mnist` exactly as a drawing on the page is,
and returns what the model's card records of each: a :class:`TrainingSource`.

Only writers that no benchmark measures are trained on: USPS' training set (its
test set is the benchmark's), optdigits' ``.tra`` (the benchmark reads
``.windep``, other writers), CVL's ``train`` split (the benchmark reads
``valid``), pendigits' writers 1-15 (the benchmark reads 16-30) and BHMSDS,
which no benchmark reads. MNIST's test set is never touched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core.card import TrainingSource
from mnist_core.data import DataError, MnistData, with_extra_training
from mnist_core.preprocessing import PREPROCESSING_VERSION, to_mnist
from mnist_core.store import file_sha256

ENV_VAR = "HANDWRITING_DATA"
# Renders of pendigits' training writers use this seed, never the benchmark's (0).
PENDIGITS_RENDER_SEED = 1


@dataclass(frozen=True)
class _Extra:
    description: str
    file: str  # the one file read, relative to the handwriting folder
    load: Callable[[Path], tuple[list[np.ndarray] | np.ndarray, np.ndarray]]  # folder -> raw images, labels


def _usps(folder: Path):
    from mnist_core.handwriting import load_usps

    return load_usps(folder / "usps", "train")


def _optdigits(folder: Path):
    from mnist_core.handwriting import load_optdigits

    return load_optdigits(folder / "optdigits" / "optdigits-orig.tra")


def _cvl(folder: Path):
    from mnist_core.handwriting import load_cvl

    images, labels, _writers = load_cvl(folder / "cvl", "train")
    return images, labels


def _bhmsds(folder: Path):
    from mnist_core.handwriting import load_bhmsds

    return load_bhmsds(folder / "bhmsds")


def _pendigits(folder: Path):
    return pen_drawings(folder, training_writers=True, seed=PENDIGITS_RENDER_SEED)


def pen_drawings(folder: Path, *, training_writers: bool, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """pendigits' trajectories of the training writers (1-15) or the held-out ones (16-30), drawn on a canvas."""
    from mnist_core.handwriting import PENDIGITS_TRAINING_WRITERS, load_pendigits, random_canvas_drawing

    digits = [d for d in load_pendigits(folder / "pendigits" / "pendigits-orig.tra")
              if (d.writer in PENDIGITS_TRAINING_WRITERS) == training_writers]
    rng = np.random.default_rng(seed)
    return [random_canvas_drawing(d, rng) for d in digits], np.array([d.label for d in digits], dtype=np.uint8)


EXTRA_SOURCES: dict[str, _Extra] = {
    "usps": _Extra("USPS training set (postal codes, 16x16)", "usps/zip.train.gz", _usps),
    "optdigits": _Extra("optdigits .tra (NIST forms, 32x32 bitmaps)", "optdigits/optdigits-orig.tra", _optdigits),
    "cvl": _Extra("CVL train split (67 Austrian writers, thin pen on paper)",
                  "cvl/cvl-single-digits-train-valid.zip", _cvl),
    "bhmsds": _Extra("BHMSDS digits (a few writers, flagged 1s, crossed 7s, photographed)",
                     "bhmsds/bhmsds.zip", _bhmsds),
    "pendigits": _Extra("pendigits writers 1-15, pen strokes drawn as canvas drawings",
                        "pendigits/pendigits-orig.tra", _pendigits),
}

# Copies drawn from training digits. The settings field that asks for each, and what it is.
SYNTHETIC_SOURCES = {
    "crossed-sevens": "a bar drawn through the stem of each MNIST training 7",
    "slashed-zeros": "a slash drawn through each MNIST training 0",
    "box-filled": "random training digits stretched to fill their box",
}


# The held-out writers every robustness figure is measured on (never trained on),
# and how their digits reach the model: as the raw images (or canvas drawings) a
# user would give, read through to_mnist. Pen drawings use the seed given.
HELD_OUT_SETS = {
    "pendigits": "pendigits writers 16-30, pen strokes drawn as canvas drawings",
    "cvl": "CVL valid split (60 Austrian writers, thin pen on paper, scanned)",
    "usps": "USPS test set (16x16)",
    "optdigits": "optdigits .windep (writers other than .tra's, 32x32 bitmaps)",
    "semeion": "Semeion (about 80 Italian writers, 16x16, thresholded and box-filled)",
}


def held_out_set(name: str, folder: str | os.PathLike | None = None, *, seed: int = 0):
    """The raw images (a list of arrays) and labels of held-out set ``name`` (a key of :data:`HELD_OUT_SETS`)."""
    from mnist_core import handwriting as hw

    root = handwriting_folder(folder)
    if name == "pendigits":
        return pen_drawings(root, training_writers=False, seed=seed)
    if name == "cvl":
        images, labels, _ = hw.load_cvl(root / "cvl", "valid")
    elif name == "usps":
        images, labels = hw.load_usps(root / "usps", "test")
    elif name == "optdigits":
        images, labels = hw.load_optdigits(root / "optdigits" / "optdigits-orig.windep")
    elif name == "semeion":
        images, labels = hw.load_semeion(root / "semeion")
    else:
        raise ValueError(f"unknown held-out set {name!r}; choose from {', '.join(HELD_OUT_SETS)}")
    return list(images), labels


def handwriting_folder(folder: str | os.PathLike | None = None) -> Path:
    """The handwriting folder: ``folder``, else ``$HANDWRITING_DATA``; DataError when neither is there."""
    chosen = folder or os.environ.get(ENV_VAR, "")
    if not chosen:
        raise DataError(f"extra training sources need a handwriting folder: pass one or set {ENV_VAR} "
                        "(the folder holding usps/, optdigits/, cvl/, bhmsds/, pendigits/)")
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: no such handwriting folder")
    return path


def load_extra_source(name: str, folder: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                                    TrainingSource]:
    """The digits of extra source ``name``, normalised like MNIST: (N, 28, 28) uint8, labels, and its record.

    The few digits the preprocessing takes for blank are left out.
    """
    if name not in EXTRA_SOURCES:
        raise ValueError(f"unknown training source {name!r}; choose from {', '.join(EXTRA_SOURCES)}")
    source, root = EXTRA_SOURCES[name], handwriting_folder(folder)
    raw, labels = source.load(root)
    images, kept = _normalised(raw, labels)
    path = root / source.file  # its sha256 is the one ../shared/data/SHA256SUMS lists
    record = TrainingSource(name, source.description, str(path), file_sha256(path), len(images),
                            PREPROCESSING_VERSION)
    return images, kept, record


def synthetic_source(name: str, x: np.ndarray, y: np.ndarray, *, n: int = 0, seed: int = 0):
    """Synthetic copies ``name`` drawn from training digits ``x``, ``y``: images, labels and their record."""
    from mnist_core import synthetic

    if name == "crossed-sevens":
        images, labels = synthetic.crossed_sevens(x, y, seed=seed)
    elif name == "slashed-zeros":
        images, labels = synthetic.slashed_zeros(x, y, seed=seed)
    elif name == "box-filled":
        images, labels = synthetic.box_filled(x, y, n, seed=seed)
    else:
        raise ValueError(f"unknown synthetic source {name!r}; choose from {', '.join(SYNTHETIC_SOURCES)}")
    digest = hashlib.sha256(images.tobytes())
    digest.update(labels.tobytes())
    record = TrainingSource(name, f"{SYNTHETIC_SOURCES[name]} (seed {seed})", "", digest.hexdigest(), len(images),
                            PREPROCESSING_VERSION)
    return images, labels, record


def with_training_sources(data: MnistData, settings) -> MnistData:
    """``data`` with every extra and synthetic source ``settings`` names added to its training set.

    ``settings`` is a :class:`~mnist_core.settings.TrainingSettings`; its
    ``extra_sources`` are read from ``settings.handwriting_data`` (else
    ``$HANDWRITING_DATA``). Crossed 7s and slashed 0s are drawn on MNIST's own
    training digits; box-filled copies on every training digit loaded before them.
    """
    unknown = [name for name in settings.extra_sources if name not in EXTRA_SOURCES]
    if unknown or len(set(settings.extra_sources)) != len(settings.extra_sources):
        raise ValueError(f"extra sources must be distinct names from {', '.join(EXTRA_SOURCES)}, "
                         f"got {', '.join(settings.extra_sources)}")
    parts = [load_extra_source(name, settings.handwriting_data or None) for name in settings.extra_sources]
    if settings.box_filled:
        x = np.concatenate([data.x_train, *(images for images, _, _ in parts)])
        y = np.concatenate([data.y_train, *(labels for _, labels, _ in parts)])
        parts.append(synthetic_source("box-filled", x, y, n=settings.box_filled, seed=settings.seed))
    if settings.crossed_sevens:
        parts.append(synthetic_source("crossed-sevens", data.x_train, data.y_train, seed=settings.seed))
    if settings.slashed_zeros:
        parts.append(synthetic_source("slashed-zeros", data.x_train, data.y_train, seed=settings.seed))
    if not parts:
        return data
    images, labels, records = zip(*parts, strict=True)
    return with_extra_training(data, np.concatenate(images), np.concatenate(labels), list(records))


def _normalised(raw, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, kept = [], []
    for image, label in zip(raw, labels, strict=True):
        normalised = to_mnist(np.asarray(image))
        if not normalised.blank:
            images.append(normalised.image)
            kept.append(label)
    if not images:
        raise DataError("every digit of this source was taken for blank")
    return np.stack(images), np.array(kept, dtype=np.uint8)
