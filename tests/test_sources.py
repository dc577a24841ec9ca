"""Training sources beyond MNIST, on the real handwriting: normalised like MNIST, none of a benchmark's writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_core.data import DataError
from mnist_core.handwriting import (
    PENDIGITS_TRAINING_WRITERS,
    load_cvl,
    load_optdigits,
    load_pendigits,
    load_usps,
    random_canvas_drawing,
)
from mnist_core.preprocessing import PREPROCESSING_VERSION, to_mnist
from mnist_core.settings import TrainingSettings
from mnist_core.sources import EXTRA_SOURCES, load_extra_source, with_training_sources
from mnist_core.store import file_sha256

EXPECTED = {"usps": 7291, "optdigits": 1934, "cvl": 7000, "bhmsds": 15000, "pendigits": None}


@pytest.fixture(scope="module")
def loaded(handwriting_dir):
    return {name: load_extra_source(name, handwriting_dir) for name in EXTRA_SOURCES}


def check_normalised_like_mnist(x: np.ndarray, y: np.ndarray) -> None:
    """MNIST's normalisation: ink high on 0, the ink within 20x20, its centre of mass at the centre."""
    assert x.ndim == 3 and x.shape[1:] == (28, 28) and x.dtype == np.uint8 and set(np.unique(y)) == set(range(10))
    assert (x[:, [0, 0, -1, -1], [0, -1, 0, -1]] == 0).all()
    ink_rows, ink_cols = (x > 0).any(axis=2), (x > 0).any(axis=1)
    height = 28 - ink_rows.argmax(axis=1) - ink_rows[:, ::-1].argmax(axis=1)
    width = 28 - ink_cols.argmax(axis=1) - ink_cols[:, ::-1].argmax(axis=1)
    assert np.maximum(height, width).max() <= 21 and np.median(np.maximum(height, width)) >= 19
    mass = x.astype(float)
    centre_row = (mass.sum(axis=2) * np.arange(28)).sum(axis=1) / mass.sum(axis=(1, 2))
    assert np.median(np.abs(centre_row - 13.5)) < 0.6


@pytest.mark.parametrize("name", list(EXTRA_SOURCES))
def test_every_source_is_normalised_like_mnist_and_recorded(loaded, handwriting_dir, name):
    x, y, record = loaded[name]
    check_normalised_like_mnist(x, y)
    if EXPECTED[name] is not None:  # the few digits taken for blank are left out
        assert EXPECTED[name] - 5 <= len(x) <= EXPECTED[name]
    assert record.name == name and record.count == len(x) and record.preprocessing == PREPROCESSING_VERSION
    assert str(handwriting_dir) in record.path and record.sha256 == file_sha256(Path(record.path))


def test_no_benchmark_digit_is_trained_on(loaded, handwriting_dir):
    trained = {image.tobytes() for name in ("usps", "optdigits", "cvl") for image in loaded[name][0]}
    usps_test, _ = load_usps(handwriting_dir / "usps", "test")
    windep, _ = load_optdigits(handwriting_dir / "optdigits" / "optdigits-orig.windep")
    cvl_valid, _, _ = load_cvl(handwriting_dir / "cvl", "valid")
    for image in [*usps_test[::4], *windep[::4], *cvl_valid[::10]]:
        normalised = to_mnist(image)
        assert normalised.blank or normalised.image.tobytes() not in trained


def test_pendigits_trains_on_writers_1_to_15_only(loaded, handwriting_dir):
    digits = load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")
    training = [d for d in digits if d.writer in PENDIGITS_TRAINING_WRITERS]
    x, _, _ = loaded["pendigits"]
    assert len(training) - 5 <= len(x) <= len(training) < 0.6 * len(digits)
    # The benchmark draws every digit with seed 0; renders of the held-out writers are not among the trained.
    rng = np.random.default_rng(0)
    held_out = [to_mnist(random_canvas_drawing(d, rng)).image.tobytes() for d in digits[:600]]
    held_out = [h for h, d in zip(held_out, digits[:600], strict=True) if d.writer not in PENDIGITS_TRAINING_WRITERS]
    assert held_out and not set(held_out) & {image.tobytes() for image in x}


def test_settings_add_sources_with_one_record_each(mnist, handwriting_dir):
    settings = TrainingSettings(extra_sources=("usps", "optdigits"), handwriting_data=str(handwriting_dir),
                                crossed_sevens=True, slashed_zeros=True, box_filled=500)
    more = with_training_sources(mnist, settings)
    names = [s.name for s in more.extra_sources]
    assert names == ["usps", "optdigits", "box-filled", "crossed-sevens", "slashed-zeros"]
    assert len(more.x_train) == len(mnist.x_train) + sum(s.count for s in more.extra_sources)
    counts = {s.name: s.count for s in more.extra_sources}
    assert counts["box-filled"] == 500
    assert 0.95 * (mnist.y_train == 7).sum() <= counts["crossed-sevens"] <= (mnist.y_train == 7).sum()
    assert 0.98 * (mnist.y_train == 0).sum() <= counts["slashed-zeros"] <= (mnist.y_train == 0).sum()
    assert more.x_test is mnist.x_test  # the test set stays MNIST's
    assert with_training_sources(mnist, TrainingSettings()) is mnist


def test_a_missing_folder_or_source_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HANDWRITING_DATA", raising=False)
    with pytest.raises(DataError, match="set HANDWRITING_DATA"):
        load_extra_source("usps")
    with pytest.raises(DataError, match="no such handwriting folder"):
        load_extra_source("usps", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"zip\.train.*no such file"):
        load_extra_source("usps", tmp_path)
    with pytest.raises(ValueError, match="unknown training source 'mnist2'"):
        load_extra_source("mnist2", tmp_path)


@pytest.mark.parametrize("names", [("usps", "mnist"), ("cvl", "cvl")])
def test_unknown_or_repeated_sources_are_refused_before_anything_loads(mnist, names):
    with pytest.raises(ValueError, match="extra sources must be distinct names from usps, optdigits, cvl"):
        with_training_sources(mnist, TrainingSettings(extra_sources=names, handwriting_data="/nowhere"))
