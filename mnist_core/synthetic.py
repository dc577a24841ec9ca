"""What MNIST's training digits lack, drawn onto copies of them: crossed 7s, slashed 0s, digits that fill their box.

**Crossed 7s.**

Much of the world (most of Europe, for one) writes 7 with a bar through its
stem: 602 of the 778 7s of the pen-written benchmark digits have one, while
fewer than 3% of MNIST's do. :func:`crossed_sevens` draws a bar through the stem
of each training 7, as a pen would (round caps, the digit's own stroke width),
and renormalises the result with :func:`~mnist_core.preprocessing.to_mnist`
like any drawing; the copies are added to the training set, the originals kept,
so the model sees the two ways of writing 7 about equally often.

**Slashed 0s.** Programmers, engineers and much of Scandinavia draw a line
through the zero to tell it from the letter O; no collection here has one, and
a model trained on MNIST reads them as 8 or 9. :func:`slashed_zeros` draws a
slash through each training 0, from above its top right to below its bottom
left, as a pen would.

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
ZERO = 0
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

    return _draw_bar(image, [(centre - dx, y - dy), (centre + dx, y + dy)], stem_width * rng.uniform(0.75, 1.0))


def crossed_sevens(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Crossed copies of the 7s among ``x`` (N, 28, 28) uint8: images and labels (all 7)."""
    rng = np.random.default_rng(seed)
    sevens = x[y == SEVEN]
    crossed = [c for c in (cross_seven(image, rng) for image in sevens) if c is not None]
    if not crossed:
        raise ValueError("no 7 in the training set could be crossed")
    return np.stack(crossed), np.full(len(crossed), SEVEN, np.uint8)


def slash_zero(image: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A 28x28 MNIST 0 with a slash through it, or None when it is too small to be a 0.

    The slash runs through the ring's centre at 50-75 degrees from the
    horizontal, leaning right, from 0-20% of the digit's height above it to as
    far below, at 75-100% of the ring's stroke width.
    """
    ink = image > INK
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows) < 12 or len(cols) < 6:
        return None
    height = rows[-1] - rows[0] + 1
    # The ring's stroke width: ink per row where the row crosses it twice.
    stroke = max(1.5, float(np.median(ink.sum(axis=1)[rows[0] + height // 4 : rows[-1] - height // 4 + 1])) / 2.0)
    cy, cx = (rows[0] + rows[-1]) / 2.0, (cols[0] + cols[-1]) / 2.0
    angle = np.radians(rng.uniform(50, 75))
    half = (0.5 + rng.uniform(0.0, 0.2)) * height / np.sin(angle)  # overshoot above and below
    dx, dy = half * np.cos(angle), half * np.sin(angle)
    ends = [(cx + dx, cy - dy), (cx - dx, cy + dy)]  # top right to bottom left
    return _draw_bar(image, ends, stroke * rng.uniform(0.75, 1.0))


def slashed_zeros(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Slashed copies of the 0s among ``x`` (N, 28, 28) uint8: images and labels (all 0)."""
    rng = np.random.default_rng(seed)
    slashed = [c for c in (slash_zero(image, rng) for image in x[y == ZERO]) if c is not None]
    if not slashed:
        raise ValueError("no 0 in the training set could be slashed")
    return np.stack(slashed), np.full(len(slashed), ZERO, np.uint8)


def _draw_bar(image: np.ndarray, ends: list[tuple[float, float]], width: float) -> np.ndarray | None:
    """``image`` with a round-capped line between ``ends`` (x, y in its pixels), renormalised like a drawing."""
    size = (28 + 2 * PAD) * UPSCALE
    big = Image.fromarray(np.pad(image, PAD)).resize((size, size), Image.Resampling.BILINEAR)
    width = width * UPSCALE
    scaled = [((x + PAD) * UPSCALE, (y + PAD) * UPSCALE) for x, y in ends]
    pen = ImageDraw.Draw(big)
    pen.line(scaled, fill=255, width=int(round(width)))
    for cx, cy in scaled:  # round caps
        pen.ellipse((cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2), fill=255)
    redrawn = to_mnist(np.asarray(big))
    return None if redrawn.blank else redrawn.image


def fill_box(image: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST digit stretched to fill the 20x20 box, centred by mass like MNIST."""
    ink = image > 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    digit = Image.fromarray(image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    filled = np.asarray(digit.resize((DIGIT_BOX, DIGIT_BOX), Image.Resampling.LANCZOS), np.float32).clip(0, None)
    return centre_by_mass(filled * (255.0 / filled.max()))


def box_filled(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``n`` random digits of ``x`` (N, 28, 28) uint8 stretched to fill their box: images and labels."""
    heights, widths = _extent(x > 0, axis=2), _extent(x > 0, axis=1)
    wide_enough = np.flatnonzero((widths >= MIN_FILL_ASPECT * heights) & (heights > 0))
    if n < 1 or n > len(wide_enough):
        raise ValueError(f"can stretch 1 to {len(wide_enough)} of these digits, not {n}")
    chosen = np.sort(np.random.default_rng(seed).choice(wide_enough, n, replace=False))
    images = np.stack([fill_box(x[i]) for i in chosen])
    return images, y[chosen].astype(np.uint8)


def _extent(ink: np.ndarray, axis: int) -> np.ndarray:
    """Each image's ink extent, first to last inked line: rows (axis=2) or columns (axis=1)."""
    lines = ink.any(axis=axis)
    first, last = lines.argmax(axis=1), lines.shape[1] - 1 - lines[:, ::-1].argmax(axis=1)
    return np.where(lines.any(axis=1), last - first + 1, 0)
