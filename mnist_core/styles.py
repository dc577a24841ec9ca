"""What MNIST's training digits lack, drawn onto them: crossed 7s, and digits that fill their box.

**Crossed 7s.**

Much of the world (most of Europe, for one) writes 7 with a bar through its
stem: 602 of the 778 7s of the pen-written benchmark digits have one, while
fewer than 3% of MNIST's do. :func:`crossed_sevens` draws a bar through the stem
of each training 7, as a pen would (round caps, the digit's own stroke width),
and renormalises the result with :func:`~mnist_core.preprocessing.to_mnist`
like any drawing; the copies are added to the training set, the originals kept,
so the model sees the two ways of writing 7 about equally often.

**Digits that fill their box.** MNIST kept each digit's aspect ratio; other
collections stretched every digit to fill its box (all of Semeion's 1,593 fill
their 16x16 square), and people draw wide digits. :func:`box_filled` copies
random training digits stretched to fill MNIST's 20x20 box; digits narrower than
:data:`MIN_FILL_ASPECT` of their height (a plain 1) are never chosen, as no
collection makes a bar of them.

With a validation split, a copy of a validation digit may be trained on, which
flatters the validation accuracy a little; the test set is never touched.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from mnist_core.preprocessing import DIGIT_BOX, centre_by_mass, to_mnist

SEVEN = 7
INK = 96  # a pixel is part of the stroke above this grey level
UPSCALE = 4  # the bar is drawn at 4x, then the digit renormalised to 28x28
PAD = 14  # room around the digit, so a long bar is not clipped
MIN_FILL_ASPECT = 0.4  # box_filled leaves out digits narrower than this fraction of their height


def cross_seven(image: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A 28x28 MNIST 7 with a bar drawn through its stem, or None where that cannot be done.

    The bar crosses the stem 42-60% of the way down, is 40-75% as long as the
    digit is wide, tilts up to 8 degrees, and is 75-100% as thick as the stem.
    None when the row picked for the bar does not cross a single stem (a bar is
    already there, or a curl), or the digit is too small to be a 7.
    """
    ink = image > INK
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) < 12:
        return None
    top, height = rows[0], rows[-1] - rows[0] + 1
    stem_width = max(1.5, float(np.median(ink.sum(axis=1)[top + height // 3 : rows[-1] + 1])))
    y = top + rng.uniform(0.42, 0.6) * height
    row = int(round(y))
    stem = np.flatnonzero(ink[row])
    around = np.flatnonzero(ink[row - 2 : row + 3].any(axis=0))
    if len(stem) == 0 or len(stem) > 3 * stem_width + 2 or len(around) > 4 * stem_width + 3:
        return None  # already crossed, or more than one stroke at that height
    centre = stem.mean() + rng.uniform(-0.1, 0.1) * height
    length = rng.uniform(0.4, 0.75) * (cols[-1] - cols[0] + 1)
    tilt = np.radians(rng.uniform(-8, 8))
    dx, dy = 0.5 * length * np.cos(tilt), 0.5 * length * np.sin(tilt)

    size = (28 + 2 * PAD) * UPSCALE
    big = Image.fromarray(np.pad(image, PAD)).resize((size, size), Image.Resampling.BILINEAR)
    width = stem_width * UPSCALE * rng.uniform(0.75, 1.0)
    ends = [((x + PAD) * UPSCALE, (yy + PAD) * UPSCALE) for x, yy in ((centre - dx, y - dy), (centre + dx, y + dy))]
    pen = ImageDraw.Draw(big)
    pen.line(ends, fill=255, width=int(round(width)))
    for cx, cy in ends:  # round caps
        pen.ellipse((cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2), fill=255)
    redrawn = to_mnist(np.asarray(big))
    return None if redrawn.blank else redrawn.image


def crossed_sevens(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Crossed copies of the 7s among ``x`` (N, 28, 28) uint8: images, labels (all 7) and a description."""
    rng = np.random.default_rng(seed)
    sevens = x[y == SEVEN]
    crossed = [c for c in (cross_seven(image, rng) for image in sevens) if c is not None]
    if not crossed:
        raise ValueError("no 7 in the training set could be crossed")
    images = np.stack(crossed)
    source = f"crossed 7s drawn on the training 7s ({len(images)}, seed {seed})"
    return images, np.full(len(images), SEVEN, np.uint8), source


def fill_box(image: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST digit stretched to fill the 20x20 box, centred by mass like MNIST."""
    ink = image > 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    digit = Image.fromarray(image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    filled = np.asarray(digit.resize((DIGIT_BOX, DIGIT_BOX), Image.Resampling.LANCZOS), np.float32).clip(0, None)
    return centre_by_mass(filled * (255.0 / filled.max()))


def box_filled(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Copies of ``n`` random digits of ``x`` (N, 28, 28) uint8 stretched to fill their box.

    Returns the images, their labels and a description for the model's card.
    """
    heights, widths = _extent(x > 0, axis=2), _extent(x > 0, axis=1)
    wide_enough = np.flatnonzero((widths >= MIN_FILL_ASPECT * heights) & (heights > 0))
    if n < 1 or n > len(wide_enough):
        raise ValueError(f"can stretch 1 to {len(wide_enough)} of these digits, not {n}")
    chosen = np.sort(np.random.default_rng(seed).choice(wide_enough, n, replace=False))
    images = np.stack([fill_box(x[i]) for i in chosen])
    return images, y[chosen].astype(np.uint8), f"digits stretched to fill the box ({n}, seed {seed})"


def _extent(ink: np.ndarray, axis: int) -> np.ndarray:
    """Each image's ink extent, first to last inked line: rows (axis=2) or columns (axis=1)."""
    lines = ink.any(axis=axis)
    first, last = lines.argmax(axis=1), lines.shape[1] - 1 - lines[:, ::-1].argmax(axis=1)
    return np.where(lines.any(axis=1), last - first + 1, 0)
