"""Time to 99.0% MNIST test accuracy from a cold start, data loading included.

Each preset runs in a fresh Python process (imports, data loading, model
building and training all count). After every half epoch the model is measured
on the 10,000 test images; the clock stops at the first measurement at or above
99.0% (the measuring itself is not counted).

    python benchmarks/bench_time_to_99.py --data ../shared/data/mnist [--preset quick]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import time
started = time.perf_counter()
import json, sys, os
import keras, numpy as np
from mnist_core.architectures import build
from mnist_core.data import load_mnist
from mnist_core.evaluation import evaluate
from mnist_core.training import compile_model, make_dataset
from mnist_core.settings import PRESETS

preset, data_path, max_epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = PRESETS[preset]
data = load_mnist(data_path)
keras.utils.set_random_seed(s.seed)
model = build(s.architecture)
ds = make_dataset(data.x_train, data.y_train, s.batch_size, shuffle=True, augment=s.augment, seed=s.seed)
half = len(ds) // 2
compile_model(model, s.learning_rate, s.epochs * len(ds), s.resolved_schedule)
excluded = 0.0
points = []
for step in range(2 * min(s.epochs, max_epochs)):
    model.fit(ds.repeat(), steps_per_epoch=half, epochs=1, verbose=0, shuffle=False)
    t0 = time.perf_counter()
    error = evaluate(model, data.x_test, data.y_test).test_error
    excluded += time.perf_counter() - t0
    elapsed = time.perf_counter() - started - excluded
    points.append({"epochs": (step + 1) / 2, "seconds": round(elapsed, 2), "test_accuracy": round(100 - error, 2)})
    if error <= 1.0:
        break
print(json.dumps({"preset": preset, "reached": error <= 1.0, "seconds": round(elapsed, 2), "curve": points}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MNIST_DATA"), help="MNIST directory (default: $MNIST_DATA)")
    parser.add_argument("--preset", action="append", help="preset(s) to time (default: quick)")
    parser.add_argument("--max-epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "time_to_99.json")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data or set MNIST_DATA")
    results = []
    for preset in args.preset or ["quick"]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", CHILD, preset, args.data, str(args.max_epochs)],
                             capture_output=True, text=True, env=env, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        curve = ", ".join(f"{p['epochs']:g} ep {p['seconds']:.1f} s {p['test_accuracy']:.2f}%" for p in result["curve"])
        verdict = f"{result['seconds']:.1f} s" if result["reached"] else "not reached"
        print(f"{preset:18s} time to 99.0%: {verdict:12s} ({curve})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "results": results}, indent=1))


if __name__ == "__main__":
    main()
