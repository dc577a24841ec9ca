"""Reproduce the Keras MNIST tutorial's three networks as the tutorial trained them.

Each preset (10 epochs, batches of 200, Adam at 0.001, all 60,000 training
images, no augmentation) is trained through the engine and measured on the
10,000 MNIST test images, beside the tutorial's published error.

    python benchmarks/bench_tutorial.py --data ../shared/data/mnist [--seeds 1]
"""

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mnist_core.data import load_mnist
from mnist_core.evaluation import evaluate
from mnist_core.settings import PRESETS
from mnist_core.training import train

ROOT = Path(__file__).resolve().parent.parent

PUBLISHED = {"tutorial-baseline": "1.8-2.0%", "tutorial-simple": "1.0-1.2%", "tutorial-large": "0.8-0.9%"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MNIST_DATA"))
    parser.add_argument("--seeds", type=int, default=1, help="repeat each with this many seeds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tutorial.json")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data or set MNIST_DATA")
    data = load_mnist(args.data)
    rows = []
    for preset, published in PUBLISHED.items():
        errors, seconds = [], []
        for seed in range(args.seeds):
            settings = replace(PRESETS[preset], seed=seed)
            started = time.perf_counter()
            result = train(data, settings)
            seconds.append(time.perf_counter() - started)
            errors.append(evaluate(result.model, data.x_test, data.y_test).test_error)
        row = {"preset": preset, "published": published, "test_error": [round(e, 2) for e in errors],
               "mean_test_error": round(float(np.mean(errors)), 2), "seconds": round(float(np.mean(seconds)), 1)}
        rows.append(row)
        print(f"{preset:18s} test error {row['mean_test_error']:.2f}% (runs: {row['test_error']}) "
              f"published {published}, {row['seconds']:.0f} s to train", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
