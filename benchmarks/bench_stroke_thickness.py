"""How well does the model read digits drawn with a thick pen? Accuracy by relative stroke width.

Real pen digits (every 5th of UCI pendigits' original trajectories, 1,499) are each
drawn three times on a 300x300 canvas, as the page's pen allows: stroke width
uniform in 6-40 px, the digit's taller side 15-90% of the canvas (seed 0). Each
drawing's relative stroke width (its stroke width over the digit's longer side, as
``to_mnist`` measures it) goes into a bin; the script prints the accuracy per bin
and how many drawings the page would warn about (above ``THICK_STROKES``). It is
the source of ``preprocessing.THICK_STROKES``.

    python benchmarks/bench_stroke_thickness.py [--model default] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from mnist_core.handwriting import load_pendigits, render_pen_digit
from mnist_core.predictor import Predictor
from mnist_core.preprocessing import THICK_STROKES, to_mnist
from mnist_core.store import ModelStore

ROOT = Path(__file__).resolve().parent.parent

BINS = [0.0, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.50, 1.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stroke_thickness.json")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set HANDWRITING_DATA")
    predictor = Predictor.load(args.model, ModelStore(args.models_dir))
    digits = load_pendigits(args.data / "pendigits" / "pendigits-orig.tra")[::5]
    rng = np.random.default_rng(0)
    widths, right = [], []
    for digit in digits:
        drawings = [render_pen_digit(digit, 300, int(rng.integers(6, 41)), float(rng.uniform(0.15, 0.9)))
                    for _ in range(3)]
        prepared = [to_mnist(drawing) for drawing in drawings]  # never blank: every digit is 15%+ of the canvas
        widths += [p.relative_stroke_width for p in prepared]
        right += list(predictor.probabilities(np.stack([p.image for p in prepared])).argmax(axis=1) == digit.label)
    widths, right = np.array(widths), np.array(right)

    print(f"model {args.model!r}, {len(widths)} drawings of {len(digits)} pen digits, pens 6-40 px, digits 15-90% tall")
    print(f"{'relative stroke width':>22s} {'drawings':>9s} {'right':>8s}")
    rows = []
    for low, high in zip(BINS, BINS[1:], strict=False):
        chosen = (widths >= low) & (widths < high)
        if chosen.any():
            accuracy = round(100 * right[chosen].mean(), 2)
            rows.append({"from": low, "to": high, "n": int(chosen.sum()), "accuracy": accuracy})
            print(f"{low:10.2f} - {high:.2f}    {rows[-1]['n']:9d} {rows[-1]['accuracy']:7.2f}%")
    thick = widths > THICK_STROKES
    summary = {
        "warned": int(thick.sum()),
        "accuracy_warned": round(100 * right[thick].mean(), 2) if thick.any() else None,
        "accuracy_not_warned": round(100 * right[~thick].mean(), 2),
    }
    print(f"above THICK_STROKES = {THICK_STROKES}: {summary['warned']} drawings, {summary['accuracy_warned']}% right "
          f"(the rest: {summary['accuracy_not_warned']}%)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "n": len(widths), "bins": rows, **summary}, indent=1))


if __name__ == "__main__":
    main()
