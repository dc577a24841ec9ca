"""Crossed 7s drawn onto real MNIST 7s, compared with real crossed 7s written on a tablet."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core.handwriting import load_pendigits, render_pen_digit
from mnist_core.preprocessing import to_mnist
from mnist_core.styles import cross_seven, crossed_sevens


@pytest.fixture(scope="module")
def sevens(mnist):
    return mnist.x_test[mnist.y_test == 7]


def widest_middle_row(image: np.ndarray) -> int:
    """Ink pixels in the widest row of the middle of the digit (35-70% of its height)."""
    ink = image > 96
    rows = np.flatnonzero(ink.any(axis=1))
    top, height = rows[0], rows[-1] - rows[0] + 1
    return int(ink[top + int(0.35 * height) : top + int(0.7 * height)].sum(axis=1).max())


def has_crossbar(digit) -> bool:
    """A pen 7 with a stroke that is flat, wide and across its middle: a crossbar."""
    points = np.concatenate(digit.strokes)
    top, height = points[:, 1].min(), np.ptp(points[:, 1])
    return any(np.ptp(s[:, 1]) < 0.2 * height and 0.3 < (s[:, 1].mean() - top) / height < 0.8
               and np.ptp(s[:, 0]) > 0.2 * height for s in digit.strokes)


def test_a_bar_crosses_the_stem_of_nearly_every_seven(sevens):
    rng = np.random.default_rng(0)
    crossed = [(seven, cross_seven(seven, rng)) for seven in sevens]
    done = [(before, after) for before, after in crossed if after is not None]
    assert len(done) >= 0.95 * len(sevens)
    assert all(after.shape == (28, 28) and after.dtype == np.uint8 for _, after in done)
    gains = np.array([widest_middle_row(after) - widest_middle_row(before) for before, after in done])
    assert np.mean(gains >= 3) > 0.85  # the middle now holds a bar several pixels wide


def test_crossed_sevens_look_like_real_crossed_sevens(sevens, handwriting_dir):
    pen = load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")
    real = np.stack([to_mnist(render_pen_digit(d)).image for d in pen if d.label == 7 and has_crossbar(d)])
    assert len(real) > 300  # most of the pen writers cross their 7s
    drawn, _, _ = crossed_sevens(sevens, np.full(len(sevens), 7), seed=0)

    def likeness(images):
        return np.corrcoef(images.astype(float).mean(axis=0).ravel(), real.astype(float).mean(axis=0).ravel())[0, 1]

    assert likeness(drawn) > likeness(sevens) + 0.03


def test_crossed_sevens_are_sevens_and_seeded(mnist):
    x, y = mnist.x_test[:2000], mnist.y_test[:2000]
    images, labels, source = crossed_sevens(x, y, seed=1)
    assert (labels == 7).all() and len(images) == len(labels) <= (y == 7).sum()
    assert f"({len(images)}, seed 1)" in source
    again, _, _ = crossed_sevens(x, y, seed=1)
    other, _, _ = crossed_sevens(x, y, seed=2)
    assert np.array_equal(images, again) and not np.array_equal(images, other)


def test_no_sevens_is_a_clear_error(mnist):
    ones = mnist.y_test == 1
    with pytest.raises(ValueError, match="no 7"):
        crossed_sevens(mnist.x_test[ones], mnist.y_test[ones])
