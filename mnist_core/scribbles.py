"""Synthetic non-digits drawn like canvas drawings: scribbles, zigzags, stars, grids, spirals, shapes.

What people draw on a digit canvas when they do not draw a digit. Each kind is
a function of a random generator giving strokes (lists of (x, y) points in a
unit box, y down), drawn with a round pen as :func:`render_scribble` does.
Nothing here looks like a digit on purpose: no single line (a 1), no plain
loop (a 0), no open curve (a 2, 3, 5 or 7). The digit-or-not network
(:mod:`mnist_core.gate`) trains on :data:`TRAINING_KINDS`; the benchmark also
draws the :data:`HELD_OUT_KINDS` it never saw, to measure how it generalises.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def _tangle(rng: np.random.Generator) -> list[np.ndarray]:
    """A dense random scribble: a smooth curve through 8-16 random points, crossing itself."""
    points = rng.uniform(0.0, 1.0, size=(int(rng.integers(8, 17)), 2))
    return [_smooth(points, 12)]


def _zigzag(rng: np.random.Generator) -> list[np.ndarray]:
    """A saw-tooth line of 4-7 teeth across the box (an m, a w, a signature's flourish)."""
    teeth = int(rng.integers(4, 8))
    x = np.linspace(0.0, 1.0, teeth * 2 + 1)
    y = np.where(np.arange(len(x)) % 2 == 0, 0.0, 1.0) + rng.normal(0, 0.08, len(x))
    return [np.stack([x, y], axis=1)]


def _star(rng: np.random.Generator) -> list[np.ndarray]:
    """A five- to seven-pointed star drawn in one stroke."""
    points = int(rng.choice([5, 7]))
    step = 2 if points == 5 else 3
    angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * step * np.arange(points + 1) / points
    return [0.5 + 0.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)]


def _grid(rng: np.random.Generator) -> list[np.ndarray]:
    """A # of two or three lines each way."""
    lines = int(rng.integers(2, 4))
    at = np.linspace(0.2, 0.8, lines)
    tilt = rng.uniform(-0.15, 0.15)
    horizontal = [np.array([[0.0, a + tilt], [1.0, a - tilt]]) for a in at]
    vertical = [np.array([[a - tilt, 0.0], [a + tilt, 1.0]]) for a in at]
    return horizontal + vertical


def _polygon(rng: np.random.Generator) -> list[np.ndarray]:
    """A triangle, square or pentagon with straight sides and sharp corners, closed."""
    sides = int(rng.choice([3, 4, 5]))
    angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(sides + 1) / sides
    return [0.5 + 0.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)]


def _spiral(rng: np.random.Generator) -> list[np.ndarray]:
    """A spiral of two to three and a half turns."""
    turns = rng.uniform(2.0, 3.5)
    t = np.linspace(0.0, 1.0, int(40 * turns))
    angle = rng.uniform(0, 2 * np.pi) + 2 * np.pi * turns * t * rng.choice([-1, 1])
    return [0.5 + 0.5 * (0.15 + 0.85 * t)[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)]


def _cross_hatch(rng: np.random.Generator) -> list[np.ndarray]:
    """Crossing diagonal hatching: four to seven parallel strokes, then as many across them."""
    n = int(rng.integers(4, 8))
    at = np.linspace(-0.3, 1.3, n)
    return ([np.array([[a - 0.3, 0.0], [a + 0.3, 1.0]]) for a in at]
            + [np.array([[a + 0.3, 0.0], [a - 0.3, 1.0]]) for a in at])


KINDS = {"tangle": _tangle, "zigzag": _zigzag, "star": _star, "grid": _grid, "polygon": _polygon,
         "spiral": _spiral, "cross-hatch": _cross_hatch}
TRAINING_KINDS = ("tangle", "zigzag", "star", "grid", "polygon")
HELD_OUT_KINDS = ("spiral", "cross-hatch")  # never trained on: the benchmark's test of generalisation


def render_scribble(kind: str, rng: np.random.Generator, canvas_size: int = 280) -> np.ndarray:
    """One drawing of ``kind`` (a key of :data:`KINDS`): white on black RGBA, as the benchmark draws pen digits.

    The pen is 12-28 pixels wide and the drawing 45-85% of the canvas on its
    longer side, its aspect ratio 0.6-1.6, at a random place with all of it inside.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown scribble kind {kind!r}; choose from {', '.join(KINDS)}")
    strokes = KINDS[kind](rng)
    width = int(rng.integers(12, 29))
    longer = rng.uniform(0.45, 0.85) * canvas_size
    aspect = rng.uniform(0.6, 1.6)
    size = longer * (np.array([1.0, 1.0 / aspect]) if aspect > 1 else np.array([aspect, 1.0]))
    low = np.concatenate(strokes).min(axis=0)
    span = np.maximum(np.concatenate(strokes).max(axis=0) - low, 1e-6)
    room = np.maximum(canvas_size - size - width, 0.0)
    corner = rng.uniform(0.0, 1.0, 2) * room + width / 2.0
    canvas = Image.new("RGBA", (canvas_size, canvas_size), (0, 0, 0, 255))
    draw = ImageDraw.Draw(canvas)
    radius = width / 2.0
    for stroke in strokes:
        xy = [(float(x), float(y)) for x, y in (stroke - low) / span * size + corner]
        draw.line(xy, fill=(255, 255, 255, 255), width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 255, 255, 255))
    return np.array(canvas)


def _smooth(points: np.ndarray, per_segment: int) -> np.ndarray:
    """A Catmull-Rom curve through ``points``, ``per_segment`` points between each pair."""
    padded = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for p0, p1, p2, p3 in zip(padded, padded[1:], padded[2:], padded[3:], strict=False):
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    return np.concatenate([*out, points[-1:]])
