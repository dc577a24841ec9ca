"""Accuracy on handwriting the model never saw, through exactly the app's preprocessing.

Sources (none derived from MNIST), from the folder given by --data or $HANDWRITING_DATA:

* pen drawings: every digit of UCI pendigits' original pen trajectories, drawn
  as a person draws on the app's canvas (white round-capped strokes 12-28 px wide
  on a black 280x280 canvas, the digit's taller side 45-85% of the canvas,
  random position; seed 0);
* USPS test set (2,007 digits, 16x16), Semeion (1,593, 16x16, thresholded),
  optdigits writer-independent (1,797, 32x32 bitmaps).

For comparison, the same run measures the naive pipeline (the whole image
resized to 28x28) and ours without its stroke-width step.

    python benchmarks/bench_robustness.py [--model default] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mnist_core.evaluation import predict_probabilities  # noqa: E402
from mnist_core.handwriting import (  # noqa: E402
    load_optdigits,
    load_pendigits,
    load_semeion,
    load_usps,
    random_canvas_drawing,
)
from mnist_core.predictor import Predictor  # noqa: E402
from mnist_core.preprocessing import to_mnist  # noqa: E402
from mnist_core.store import ModelStore  # noqa: E402

TARGETS = {"pen drawings": 99.0, "USPS test": 98.0, "Semeion": 97.0, "optdigits windep": 97.0}


def naive(image: np.ndarray) -> np.ndarray:
    """The naive pipeline: the whole image, as grey, resized to 28x28 (area averaging)."""
    grey = Image.fromarray(image[:, :, 0] if image.ndim == 3 else image)
    return np.asarray(grey.resize((28, 28), Image.Resampling.BOX))


def sources(data: Path, seed: int) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    digits = load_pendigits(data / "pendigits" / "pendigits-orig.tra")
    rng = np.random.default_rng(seed)
    pen = ([random_canvas_drawing(d, rng) for d in digits], np.array([d.label for d in digits]))
    return {
        "pen drawings": pen,
        "USPS test": load_usps(data / "usps", "test"),
        "Semeion": load_semeion(data / "semeion"),
        "optdigits windep": load_optdigits(data / "optdigits" / "optdigits-orig.windep"),
    }


def accuracy(predictor: Predictor, images28: np.ndarray, labels: np.ndarray, blank=None) -> tuple[float, list]:
    """Percent right (an image the preprocessing called blank counts as wrong), and the commonest mistakes."""
    predicted = predict_probabilities(predictor.model, images28).argmax(axis=1)
    right = predicted == labels
    if blank is not None:
        right &= ~blank
    shown = np.where(blank, -1, predicted) if blank is not None else predicted
    pairs = Counter(f"{t}->{'blank' if p < 0 else p}" for t, p in zip(labels[~right], shown[~right], strict=True))
    return 100.0 * float(np.mean(right)), pairs.most_common(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model name in the store (default: default)")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "robustness.json")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set HANDWRITING_DATA to the folder holding pendigits/, usps/, ...")
    predictor = Predictor.load(args.model, ModelStore(args.models_dir))
    rows = []
    print(f"model {args.model!r} ({predictor.card.architecture}, MNIST test error {predictor.card.test_error:.2f}%)")
    print(f"{'source':18s} {'n':>6s} {'naive':>8s} {'ours':>8s} {'no width':>9s} {'target':>7s} {'blank':>6s}  "
          "commonest mistakes (true->predicted)")
    for name, (images, labels) in sources(args.data, args.seed).items():
        ours = [to_mnist(x) for x in images]
        plain = [to_mnist(x, normalise_width=False) for x in images]
        ours_right, ours_mistakes = accuracy(predictor, np.stack([p.image for p in ours]), labels,
                                             np.array([p.blank for p in ours]))
        row = {
            "source": name,
            "n": len(labels),
            "naive": accuracy(predictor, np.stack([naive(x) for x in images]), labels)[0],
            "ours": ours_right,
            "ours_without_width_step": accuracy(predictor, np.stack([p.image for p in plain]), labels,
                                                np.array([p.blank for p in plain]))[0],
            "taken_for_blank": int(sum(p.blank for p in ours)),
            "target": TARGETS[name],
            "commonest_mistakes": ours_mistakes,  # ["true->predicted" (or "->blank"), count]
        }
        rows.append(row)
        print(f"{name:18s} {row['n']:6d} {row['naive']:7.2f}% {row['ours']:7.2f}% "
              f"{row['ours_without_width_step']:8.2f}% {row['target']:6.1f}% {row['taken_for_blank']:6d}  "
              f"{', '.join(f'{pair} x{count}' for pair, count in ours_mistakes[:3])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "card_test_error": predictor.card.test_error,
                                    "seed": args.seed, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
