"""Crossed 7s, slashed 0s and box-filled digits drawn from real MNIST digits, compared with real handwriting."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mnist_core.handwriting import load_pendigits, load_semeion, render_pen_digit
from mnist_core.preprocessing import to_mnist
from mnist_core.synthetic import box_filled, cross_seven, crossed_sevens, slash_zero, slashed_zeros


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


def likeness(images: np.ndarray, real: np.ndarray) -> float:
    """Correlation of two sets' mean images."""
    return float(np.corrcoef(images.astype(float).mean(axis=0).ravel(), real.astype(float).mean(axis=0).ravel())[0, 1])


def test_crossed_sevens_look_like_real_crossed_sevens(sevens, handwriting_dir):
    pen = load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")
    real = np.stack([to_mnist(render_pen_digit(d)).image for d in pen if d.label == 7 and has_crossbar(d)])
    assert len(real) > 300  # most of the pen writers cross their 7s
    drawn, _ = crossed_sevens(sevens, np.full(len(sevens), 7), seed=0)
    assert likeness(drawn, real) > likeness(sevens, real) + 0.03


def test_crossed_sevens_are_sevens_and_seeded(mnist):
    x, y = mnist.x_test[:2000], mnist.y_test[:2000]
    images, labels = crossed_sevens(x, y, seed=1)
    assert (labels == 7).all() and len(images) == len(labels) <= (y == 7).sum()
    again, _ = crossed_sevens(x, y, seed=1)
    other, _ = crossed_sevens(x, y, seed=2)
    assert np.array_equal(images, again) and not np.array_equal(images, other)


def test_no_sevens_is_a_clear_error(mnist):
    ones = mnist.y_test == 1
    with pytest.raises(ValueError, match="no 7"):
        crossed_sevens(mnist.x_test[ones], mnist.y_test[ones])


def test_a_slash_crosses_every_zero_through_its_hole(mnist):
    zeros = mnist.x_test[mnist.y_test == 0]
    rng = np.random.default_rng(0)
    slashed = [(zero, slash_zero(zero, rng)) for zero in zeros[:400]]
    done = [(before, after) for before, after in slashed if after is not None]
    assert len(done) >= 0.98 * len(slashed)
    # A 0's hole is the background enclosed by its ring; a slash cuts it in two (or more, where it
    # leaves the ring). Some MNIST 0s are not closed, or not at 28x28: those with one hole count.
    holes = [(count_holes(before), count_holes(after)) for before, after in done]
    ringed = [after for before, after in holes if before == 1]
    assert len(ringed) > 0.7 * len(holes)
    assert np.mean([after >= 2 for after in ringed]) > 0.75


def count_holes(image: np.ndarray) -> int:
    """Background regions that do not reach the border (8-connected ink, 4-connected background)."""
    background, n = ndimage.label(image <= 96)
    border = set(np.unique(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])))
    return sum(1 for label in range(1, n + 1) if label not in border and (background == label).sum() >= 2)


def test_slashed_zeros_are_zeros_and_seeded(mnist):
    x, y = mnist.x_test[:2000], mnist.y_test[:2000]
    images, labels = slashed_zeros(x, y, seed=1)
    assert (labels == 0).all() and 0.98 * (y == 0).sum() <= len(images) <= (y == 0).sum()
    assert np.array_equal(images, slashed_zeros(x, y, seed=1)[0])
    assert not np.array_equal(images, slashed_zeros(x, y, seed=2)[0])
    with pytest.raises(ValueError, match="no 0"):
        slashed_zeros(x[y == 1], y[y == 1])


def test_box_filled_digits_fill_the_20x20_box(mnist):
    x, y = mnist.x_test, mnist.y_test
    images, labels = box_filled(x, y, 2000, seed=0)
    assert images.shape == (2000, 28, 28) and images.dtype == np.uint8
    for image in images[:300]:
        rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
        assert 19 <= rows[-1] - rows[0] + 1 <= 20 and 19 <= cols[-1] - cols[0] + 1 <= 20
        assert np.abs(np.array(ndimage.center_of_mass(image.astype(float))) - 14).max() <= 1
    # a plain, upright 1 is never stretched into a bar: only wide enough digits are chosen, so fewer 1s
    assert (labels == 1).mean() < 0.75 * (y == 1).mean()


def test_box_filled_digits_look_like_semeions(mnist, handwriting_dir):
    """Semeion stretched every digit to fill its 16x16 square: box-filled MNIST digits resemble them more."""
    x, y = mnist.x_test, mnist.y_test
    images, labels = box_filled(x, y, 3000, seed=0)
    semeion, semeion_labels = load_semeion(handwriting_dir / "semeion")
    real = np.stack([to_mnist(image).image for image in semeion])
    before = np.mean([likeness(x[y == d], real[semeion_labels == d]) for d in range(10)])
    after = np.mean([likeness(images[labels == d], real[semeion_labels == d]) for d in range(10)])
    assert after > before + 0.05


def test_box_filled_asks_for_what_it_can_give(mnist):
    x, y = mnist.x_test[:100], mnist.y_test[:100]
    with pytest.raises(ValueError, match="not 0"):
        box_filled(x, y, 0)
    with pytest.raises(ValueError, match="not 101"):
        box_filled(x, y, 101)

