"""How fast and how faithful `Predictor.explain` is, on held-out pen digits.

Speed: the median time of one `explain` (preprocessing, forward pass, saliency
for the digit and the runner-up, every convolution's feature maps), alone and
after `keras.backend.clear_session()` as on the page.

Faithfulness (a deletion test): for each digit, wipe (set to black) the k ink
pixels a saliency ranks highest, and as many random ink pixels (5 draws); how
much does the predicted digit's probability drop? A faithful saliency's wipe
hurts more than the random one. Integrated gradients (what `explain` uses)
beside plain gradients, at k = 5%, 10% and 20% of each digit's ink.

    python benchmarks/bench_explain.py [--model default] [--n 600] [--timed 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from mnist_core.explain import gradients, integrated_gradients
from mnist_core.predictor import Predictor
from mnist_core.sources import pen_drawings
from mnist_core.store import ModelStore

ROOT = Path(__file__).resolve().parent.parent
FRACTIONS = (0.05, 0.10, 0.20)
RANDOM_DRAWS = 5


def wiped(images: np.ndarray, saliency: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """``images`` with their top-``fraction`` ink by ``saliency`` wiped, and with as much random ink wiped
    (``RANDOM_DRAWS`` copies each)."""
    top, random = [], []
    for image, s in zip(images, saliency, strict=True):
        flat = image.ravel()
        ink = np.flatnonzero(flat)
        k = max(1, round(fraction * len(ink)))
        chosen = ink[np.argsort(s.ravel()[ink])[::-1][:k]]
        top.append(np.where(np.isin(np.arange(flat.size), chosen), 0, flat).reshape(image.shape))
        for _ in range(RANDOM_DRAWS):
            other = rng.choice(ink, k, replace=False)
            random.append(np.where(np.isin(np.arange(flat.size), other), 0, flat).reshape(image.shape))
    return np.stack(top), np.stack(random)


def deletion(predictor: Predictor, images, digits, saliency, fraction, rng) -> dict:
    n = len(images)
    before = predictor.probabilities(images)[np.arange(n), digits]
    top, random = wiped(images, saliency, fraction, rng)
    after_top = predictor.probabilities(top)[np.arange(n), digits]
    after_random = predictor.probabilities(random)[np.arange(n * RANDOM_DRAWS), np.repeat(digits, RANDOM_DRAWS)]
    after_random = after_random.reshape(n, RANDOM_DRAWS).mean(axis=1)
    drop_top, drop_random = before - after_top, before - after_random
    return {
        "ink_wiped": fraction,
        "mean_drop_top": round(float(drop_top.mean()), 4),
        "mean_drop_random": round(float(drop_random.mean()), 4),
        "share_top_beats_random": round(float(np.mean(drop_top > drop_random)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"))
    parser.add_argument("--n", type=int, default=600, help="pen digits for the faithfulness test")
    parser.add_argument("--timed", type=int, default=200, help="drawings timed one at a time")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "explain.json")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set HANDWRITING_DATA")
    predictor = Predictor.load(args.model, ModelStore(args.models_dir))
    drawings, labels = pen_drawings(args.data, training_writers=False, seed=0)
    chosen = np.linspace(0, len(drawings) - 1, max(args.n, args.timed)).astype(int)
    drawings, labels = [drawings[i] for i in chosen], labels[chosen]

    predictor.explain(drawings[0])  # traces the saliency's graph (~1 s), once per model
    timings = {}
    for case, before in (("explain", None), ("explain after clear_session (page)",
                                             lambda: keras.backend.clear_session(free_memory=False))):
        ms = []
        for drawing in drawings[:args.timed]:
            if before is not None:
                before()
            started = time.perf_counter()
            predictor.explain(drawing)
            ms.append(1000 * (time.perf_counter() - started))
        timings[case] = {"median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}

    predictions = predictor.predict_many(drawings[:args.n])
    images = np.stack([p.image for p in predictions])
    digits = np.array([p.digit for p in predictions])
    rng = np.random.default_rng(0)
    methods = {
        "integrated gradients (explain)": np.maximum(integrated_gradients(predictor.model, images, digits), 0),
        "plain gradients": gradients(predictor.model, images, digits),
    }
    faithfulness = {name: [deletion(predictor, images, digits, s, f, rng) for f in FRACTIONS]
                    for name, s in methods.items()}

    print(f"model {args.model!r} ({predictor.card.architecture}), {os.cpu_count()} cores")
    for case, t in timings.items():
        print(f"{case:40s} median {t['median_ms']:6.1f} ms   p95 {t['p95_ms']:6.1f} ms   ({args.timed} drawings)")
    print(f"\ndeletion test on {len(images)} held-out pen digits (pendigits writers 16-30): probability drop of "
          "the predicted digit")
    print(f"{'saliency':32s} {'ink wiped':>9s} {'top-ranked':>11s} {'random':>8s} {'top > random':>13s}")
    for name, rows in faithfulness.items():
        for r in rows:
            print(f"{name:32s} {r['ink_wiped']:9.0%} {r['mean_drop_top']:11.3f} {r['mean_drop_random']:8.3f} "
                  f"{r['share_top_beats_random']:13.1%}")
    args.out.write_text(json.dumps({
        "model": args.model, "architecture": predictor.card.architecture, "cores": os.cpu_count(),
        "timed_drawings": args.timed, "timings": timings,
        "faithfulness_digits": len(images), "faithfulness_source": "pendigits writers 16-30, drawn as canvas drawings",
        "faithfulness": faithfulness,
    }, indent=2) + "\n")
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
