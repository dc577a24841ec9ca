"""Several users drawing at once, with and without another user training: prediction latency and errors.

Starts the page on the shipped model store, then, for ``--seconds`` each: ``--users``
users (each its own headless Chromium) draw real pen digits without pause; first
alone, then while one more user trains the `simple` CNN from the sidebar (on a
2,000-image real MNIST slice, niced child process). Only 127.0.0.1 is contacted.

    python benchmarks/bench_concurrency.py [--users 3] [--seconds 60]

Prints and writes benchmarks/results/concurrency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser driver the tests use (tests/app_driver.py)

import app_driver as driver
import load_driver as load
import numpy as np

from mnist_core.data import load_mnist
from mnist_core.handwriting import load_pendigits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_DATA"), help="default: $MNIST_DATA")
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"),
                        help="handwriting folder (default: $HANDWRITING_DATA)")
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "concurrency.json")
    args = parser.parse_args()
    if args.data is None or args.mnist is None:
        parser.error("set HANDWRITING_DATA and MNIST_DATA (or give --data and --mnist)")
    digits = driver.choose_digits(load_pendigits(args.data / "pendigits" / "pendigits-orig.tra"), 5)
    mnist = load_mnist(args.mnist)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        train_data = Path(tmp) / "mnist-2k.npz"
        np.savez(train_data, x_train=mnist.x_train[:2000], y_train=mnist.y_train[:2000],
                 x_test=mnist.x_test[:500], y_test=mnist.y_test[:500])
        # A copy of the store, so the benchmark's training never writes into models/.
        models = Path(tmp) / "models"
        models.mkdir()
        for suffix in (".keras", ".json"):
            (models / f"default{suffix}").write_bytes((args.models_dir / f"default{suffix}").read_bytes())
        server = driver.start_server(models, Path(tmp) / "server.log", data=train_data)
        try:
            results["drawing only"] = load.summary(load.run_users(server.url, digits, args.users, args.seconds))
            trainer = load.Trainer(server.url, epochs=500)
            try:
                runs = load.run_users(server.url, digits, args.users, args.seconds, while_waiting=trainer.start)
                results["while another user trains"] = load.summary(runs)
                results["while another user trains"]["training_still_running"] = trainer.still_training()
                trainer.stop()
            finally:
                trainer.close()
        finally:
            server.stop()
    for name, r in results.items():
        print(f"{name:26s} {r['users']} users, {r['predictions']} predictions: median {r['median_ms']} ms, "
              f"p95 {r['p95_ms']} ms, correct {r['correct']}, errors {len(r['errors'])}, "
              f"sessions alive {r['sessions_alive_at_end']}/{r['users']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "seconds": args.seconds,
                                    "results": results}, indent=1))
    return 0 if all(not r["errors"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
