"""Numbers: find the digits of a drawing that holds several side by side, and read them left to right.

The drawing's ink (``to_mnist``'s first step, so the same measure of ink) is
cut into pieces: its connected strokes, less specks (a stray dot), with strokes
that overlap heavily in x joined (a crossed 7's bar, a 5's flag, a 4 in two
strokes), and a piece too wide for one digit cut at its column of least ink
(touching digits). Which neighbouring pieces make one digit is then decided by
reading them: every run of up to :data:`MAX_RUN` neighbouring pieces close
enough to be one digit is cropped, normalised by ``to_mnist`` exactly as a
single digit is, and scored by the digit model (its top probability) and the
digit-or-not network (:mod:`mnist_core.gate`, its P(digit)); the split of the
drawing into runs with the best total score wins, a cut through a stroke costing
:data:`CUT_PENALTY`. A piece is not cut when, read whole, the network finds it
likelier not a digit than one or two digits: a w is a letter, not a "41". A
drawing that is one piece is read as :func:`to_mnist` reads it whole, so a single
digit gets exactly ``Predictor.predict``'s answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mnist_core.preprocessing import EIGHT_NEIGHBOURS, Preprocessed, to_mnist

# Ink of at least this fraction of the strongest makes the strokes that are found;
# the fainter, anti-aliased edge around them goes with them into each crop.
INK_LEVEL = 0.25
# A piece whose longer side is under this fraction of the tallest piece's height is
# a speck (a stray dot of a 28-pixel pen beside a digit of 180 is 0.16), and ignored.
SPECK = 0.25
# Pieces whose x ranges overlap by at least this fraction of the narrower one are one
# digit: a crossed 7's bar, a 5's flag, a 4 drawn in two strokes, a scan's broken line.
OVERLAP = 0.5
# Neighbouring pieces this close (the gap between them, as a fraction of the tallest
# piece's height) may be one digit; reading decides. Farther apart they are two.
JOIN_GAP = 0.2
# A piece wider than this times its height may hold touching digits: it is also read
# cut in two at its column of least ink (and each half again, if as wide). Two touching
# digits are often no wider than tall (a 1 or a 7 in them); 5.6% of pen digits
# (pendigits writers 1-15) are wider than tall, 1.4% wider than 1.2.
WIDE = 0.75
CUT_DEPTH = 2  # halves of a wide piece are cut again at most once: up to four touching digits
MAX_RUN = 4  # pieces in one digit at most, after joining those that overlap (a piece cut in four)
MAX_PIECES = 12  # more pieces than this is no number: read the drawing whole
# What cutting a stroke costs, in log-probability: a digit must read far better in two
# parts than whole to be cut (a wide 0 read as "( )" scores about as well as one 0).
CUT_PENALTY = 1.5

Classify = Callable[[list[Preprocessed]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Region:
    """One digit of a drawing: its normalised image, where it is, and how it reads.

    ``box`` is (left, top, right, bottom) in the pixels of the ink ``to_mnist``
    measured (the image's own, unless it was larger than ``MAX_INPUT_SIDE``);
    ``probabilities`` are the digit model's ten; ``not_a_digit`` the digit-or-not
    network's score.
    """

    prepared: Preprocessed
    box: tuple[int, int, int, int]
    probabilities: np.ndarray
    not_a_digit: float


@dataclass(frozen=True)
class _Piece:
    """Strokes ``labels`` (of the labelled ink) within columns ``left`` to ``right`` (exclusive)."""

    labels: tuple[int, ...]
    left: int
    right: int
    top: int
    bottom: int
    cut_after: bool = False  # the next piece is the rest of the same stroke, cut off


def read_regions(whole: Preprocessed, classify: Classify) -> list[Region]:
    """The digits of a drawing, left to right: ``whole`` is ``to_mnist`` of the drawing (blank: none).

    ``classify`` maps a list of ``to_mnist`` results to their (N, 10) digit
    probabilities and the digit-or-not network's (N, 3) ones (digit, not a digit, two digits).
    """
    if whole.blank:
        return []
    ink = whole.steps["ink"]
    labels, pieces, specks = _pieces(ink)
    if len(pieces) == 1 and not specks or not pieces or len(pieces) > MAX_PIECES:
        probabilities, gate = classify([whole])
        height, width = ink.shape
        box = _box(ink > 0) or (0, 0, width, height)
        return [Region(whole, box, probabilities[0], float(1.0 - gate[0, 0]))]

    tallest = max(p.bottom - p.top for p in pieces)
    runs = [(i, j) for i in range(len(pieces)) for j in range(i + 1, min(i + MAX_RUN, len(pieces)) + 1)
            if all(_joinable(pieces[k], pieces[k + 1], tallest) for k in range(i, j - 1))]
    crops = [_crop(ink, labels, pieces[i:j], i > 0 and pieces[i - 1].cut_after) for i, j in runs]
    prepared = [to_mnist(image) for image, _ in crops]
    probabilities, gate = classify(prepared)
    score = np.log(np.maximum(probabilities.max(axis=1), 1e-9)) + np.log(np.maximum(gate[:, 0], 1e-9))
    uncut = _uncut(pieces, runs, gate)

    # best[j]: the best total score of the pieces before j split into runs; came[j], where its last run began.
    best, came = np.full(len(pieces) + 1, -np.inf), np.zeros(len(pieces) + 1, int)
    best[0] = 0.0
    for n, (i, j) in enumerate(runs):
        cut = (np.inf if i in uncut else CUT_PENALTY) if i > 0 and pieces[i - 1].cut_after else 0.0
        if best[i] + score[n] - cut > best[j]:
            best[j], came[j] = best[i] + score[n] - cut, i
    chosen, j = [], len(pieces)
    while j > 0:
        chosen.append(runs.index((came[j], j)))
        j = came[j]
    return [Region(prepared[n], crops[n][1], probabilities[n], float(1.0 - gate[n, 0])) for n in reversed(chosen)]


def _uncut(pieces: list[_Piece], runs: list[tuple[int, int]], gate: np.ndarray) -> set[int]:
    """The pieces that must not be cut off the one before: those of a stroke that, read whole, is likelier
    not a digit than one or two."""
    forbidden, start = set(), 0
    for end in range(1, len(pieces) + 1):
        if not pieces[end - 1].cut_after:  # pieces start..end-1 are one stroke, cut (or not)
            if end - start > 1 and (start, end) in runs:
                p_digit, p_other, p_two = gate[runs.index((start, end))]
                if p_other > p_digit + p_two:
                    forbidden.update(range(start + 1, end))
            start = end
    return forbidden


def _pieces(ink: np.ndarray) -> tuple[np.ndarray, list[_Piece], int]:
    """The labelled strokes of ``ink``, its pieces left to right (joined, cut) and how many specks were ignored."""
    labels, n = ndimage.label(ink >= INK_LEVEL * 255, structure=EIGHT_NEIGHBOURS)
    boxes = ndimage.find_objects(labels)
    tallest = max((b[0].stop - b[0].start for b in boxes), default=0)
    groups = []  # [labels, left, right, top, bottom] of the strokes that are not specks
    for label, (rows, cols) in enumerate(boxes, start=1):
        if max(rows.stop - rows.start, cols.stop - cols.start) >= SPECK * tallest:
            groups.append([[label], cols.start, cols.stop, rows.start, rows.stop])
    specks = n - len(groups)
    joined = True
    while joined:  # join strokes that overlap heavily in x, until none do
        joined = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                ga, gb = groups[a], groups[b]
                overlap = min(ga[2], gb[2]) - max(ga[1], gb[1])
                if overlap >= OVERLAP * min(ga[2] - ga[1], gb[2] - gb[1]):
                    groups[a] = [ga[0] + gb[0], min(ga[1], gb[1]), max(ga[2], gb[2]), min(ga[3], gb[3]),
                                 max(ga[4], gb[4])]
                    del groups[b]
                    joined = True
                    break
            if joined:
                break
    pieces = []
    for strokes, left, right, top, bottom in sorted(groups, key=lambda g: (g[1] + g[2]) / 2):
        pieces.extend(_cut(ink, labels, _Piece(tuple(strokes), left, right, top, bottom), CUT_DEPTH))
    return labels, pieces, specks


def _cut(ink: np.ndarray, labels: np.ndarray, piece: _Piece, depth: int) -> list[_Piece]:
    """``piece``, or its parts left to right when it is wide enough to hold touching digits (``depth`` cuts deep)."""
    width, height = piece.right - piece.left, piece.bottom - piece.top
    if depth < 1 or width <= WIDE * height:
        return [piece]
    mine = np.isin(labels[piece.top:piece.bottom, piece.left:piece.right], piece.labels)
    columns = (ink[piece.top:piece.bottom, piece.left:piece.right] * mine).sum(axis=0, dtype=np.float64)
    # Touching digits meet where there is least ink; look in the middle half, slightly preferring its centre.
    low, high = width // 4, width - width // 4
    middle = np.abs(np.arange(low, high) - width / 2) / width
    at = piece.left + low + int(np.argmin(columns[low:high] * (1.0 + middle)))
    left, right = _shrunk(labels, piece, piece.left, at, True), _shrunk(labels, piece, at, piece.right, piece.cut_after)
    if left is None or right is None:  # all its ink on one side (strokes joined by their overlap)
        return [piece]
    return _cut(ink, labels, left, depth - 1) + _cut(ink, labels, right, depth - 1)


def _shrunk(labels: np.ndarray, piece: _Piece, left: int, right: int, cut_after: bool) -> _Piece | None:
    """The part of ``piece`` in columns ``left`` to ``right``, its rows narrowed to its strokes' ink there
    (None when it has none)."""
    found = np.flatnonzero(np.isin(labels[:, left:right], piece.labels).any(axis=1))
    if len(found) == 0:
        return None
    return _Piece(piece.labels, left, right, int(found[0]), int(found[-1]) + 1, cut_after)


def _joinable(first: _Piece, second: _Piece, tallest: int) -> bool:
    """Whether two neighbouring pieces may be one digit: parts of one cut stroke, or close enough."""
    return first.cut_after or second.left - first.right < JOIN_GAP * tallest


def _crop(ink: np.ndarray, labels: np.ndarray, run: list[_Piece], cut_before: bool
          ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The ink of ``run``'s strokes alone (others' wiped), cropped with a margin of background; and its box.

    The strokes' faint anti-aliased edges (below INK_LEVEL) come with them, but
    not across a cut: ``cut_before`` when the run's first piece was cut off the
    piece before it.
    """
    mask = np.zeros(ink.shape, dtype=bool)
    for piece in run:
        columns = slice(piece.left, piece.right)
        mask[:, columns] |= np.isin(labels[:, columns], piece.labels)
    mask = ndimage.binary_dilation(mask, EIGHT_NEIGHBOURS, iterations=2)
    if cut_before:
        mask[:, :run[0].left] = False
    if run[-1].cut_after:
        mask[:, run[-1].right:] = False
    box = _box(mask & (ink > 0)) or _box(mask)
    if box is None:  # no ink of its own left (a sliver of a cut): blank, never chosen
        return np.zeros((8, 8), np.uint8), (run[0].left, run[0].top, run[-1].right, run[-1].bottom)
    left, top, right, bottom = box
    margin = max(right - left, bottom - top) // 4 + 2
    crop = np.zeros((bottom - top + 2 * margin, right - left + 2 * margin), np.uint8)
    crop[margin:-margin, margin:-margin] = np.where(mask, ink, 0)[top:bottom, left:right]
    return crop, box


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
