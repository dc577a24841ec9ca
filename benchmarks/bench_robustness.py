"""Accuracy on handwriting of writers never trained on, through exactly the app's preprocessing.

The held-out sets (``mnist_core.sources.HELD_OUT_SETS``, none derived from MNIST),
from the folder given by --data or $HANDWRITING_DATA:

* pendigits: the pen trajectories of writers 16-30 (1-15 may be trained on),
  drawn as a person draws on the app's canvas (white round-capped strokes
  12-28 px wide on a black 280x280 canvas, the digit's taller side 45-85% of the
  canvas, random position; seed 0);
* CVL valid (7,000 scanned digits by 60 Austrian writers; CVL train's 67 others may
  be trained on), USPS test (2,007, 16x16), optdigits .windep (1,797, 32x32
  bitmaps), Semeion (1,593, 16x16, thresholded).

For each: the naive pipeline (the whole image resized to 28x28) beside ours, and
ours without its stroke-width step, all in one run; the commonest confusions and
the 1<->7 confusions. Writes benchmarks/results/robustness.json.

    python benchmarks/bench_robustness.py [--model default] [--models-dir DIR] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_core.evaluation import predict_probabilities
from mnist_core.predictor import Predictor
from mnist_core.preprocessing import to_mnist
from mnist_core.sources import HELD_OUT_SETS, held_out_set
from mnist_core.store import ModelStore

ROOT = Path(__file__).resolve().parent.parent

# What issue #12 asks of the shipped default, percent right.
TARGETS = {"pendigits": 99.0, "cvl": 98.0, "usps": 98.5, "optdigits": 99.0, "semeion": 97.0}


def naive(image: np.ndarray) -> np.ndarray:
    """The naive pipeline: the whole image as grey, ink made high, resized to 28x28 (area averaging)."""
    grey = image[:, :, 0] if image.ndim == 3 else image
    if np.median(grey) > 127:  # dark ink on light paper: invert, as a user of the naive pipeline would
        grey = 255 - grey
    return np.asarray(Image.fromarray(grey).resize((28, 28), Image.Resampling.BOX))


def measure(predictor: Predictor, images28: np.ndarray, labels: np.ndarray, blank=None) -> dict:
    """Percent right (a digit the preprocessing called blank counts as wrong), confusions and 1<->7."""
    predicted = predict_probabilities(predictor.model, images28).argmax(axis=1)
    if blank is not None:
        predicted = np.where(blank, -1, predicted)
    wrong = predicted != labels
    pairs = Counter(f"{t}->{'blank' if p < 0 else p}" for t, p in zip(labels[wrong], predicted[wrong], strict=True))
    return {
        "accuracy": 100.0 * float(np.mean(~wrong)),
        "errors": int(wrong.sum()),
        "commonest_mistakes": pairs.most_common(6),
        "1->7": int(((labels == 1) & (predicted == 7)).sum()),
        "7->1": int(((labels == 7) & (predicted == 1)).sum()),
        "ones": int((labels == 1).sum()),
        "sevens": int((labels == 7).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model name in the store (default: default)")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "robustness.json")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set HANDWRITING_DATA to the folder holding pendigits/, cvl/, usps/, ...")
    predictor = Predictor.load(args.model, ModelStore(args.models_dir))
    card = predictor.card
    print(f"model {args.model!r} ({card.architecture}, MNIST test error {card.test_error:.2f}%, "
          f"preprocessing v{card.preprocessing})")
    print(f"{'set':10s} {'n':>6s} {'naive':>7s} {'ours':>7s} {'no width':>8s} {'target':>6s} {'1->7':>9s} "
          f"{'7->1':>9s}  commonest mistakes (true->predicted)")
    rows = []
    for name, description in HELD_OUT_SETS.items():
        images, labels = held_out_set(name, args.data, seed=args.seed)
        ours = [to_mnist(x) for x in images]
        plain = [to_mnist(x, normalise_width=False) for x in images]
        result = measure(predictor, np.stack([p.image for p in ours]), labels, np.array([p.blank for p in ours]))
        row = {
            "set": name,
            "description": description,
            "n": len(labels),
            "naive": measure(predictor, np.stack([naive(x) for x in images]), labels)["accuracy"],
            "ours": result["accuracy"],
            "ours_without_width_step": measure(predictor, np.stack([p.image for p in plain]), labels,
                                               np.array([p.blank for p in plain]))["accuracy"],
            "taken_for_blank": int(sum(p.blank for p in ours)),
            "target": TARGETS[name],
            **{k: v for k, v in result.items() if k != "accuracy"},
        }
        rows.append(row)
        print(f"{name:10s} {row['n']:6d} {row['naive']:6.2f}% {row['ours']:6.2f}% "
              f"{row['ours_without_width_step']:7.2f}% {row['target']:5.1f}% "
              f"{row['1->7']:4d}/{row['ones']:<4d} {row['7->1']:4d}/{row['sevens']:<4d}  "
              f"{', '.join(f'{pair} x{count}' for pair, count in row['commonest_mistakes'][:4])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "architecture": card.architecture,
                                    "card_test_error": card.test_error, "preprocessing": card.preprocessing,
                                    "keras_sha256": card.keras_sha256, "seed": args.seed, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
