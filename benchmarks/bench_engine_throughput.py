"""Training images per second: our engine (`mnist_core.training.train`) against plain `model.fit`.

Same architecture, same data pipeline, same batch size, in the same process,
alternating the two so that any drift of the machine hits both alike. The
engine's cost is its progress callback and stop check after every batch.

    python benchmarks/bench_engine_throughput.py --data ../shared/data/mnist
"""

import argparse
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from mnist_core.architectures import ARCHITECTURES, build
from mnist_core.data import MnistData, load_mnist
from mnist_core.settings import TrainingSettings
from mnist_core.training import compile_model, make_dataset, train

ROOT = Path(__file__).resolve().parent.parent
IMAGES = {"baseline": 60_000, "simple": 60_000, "large": 60_000, "best": 25_600}


def plain_fit(data: MnistData, settings: TrainingSettings) -> float:
    """Images per second of plain `model.fit`, timed like the engine: building the model and data included."""
    started = time.perf_counter()
    keras.utils.set_random_seed(settings.seed)
    model = build(settings.architecture)
    ds = make_dataset(data.x_train, data.y_train, settings.batch_size, shuffle=True, augment=settings.augment,
                      seed=settings.seed)
    compile_model(model, settings.learning_rate, settings.epochs * len(ds), settings.resolved_schedule)
    model.fit(ds, epochs=settings.epochs, verbose=0, shuffle=False)
    return len(data.x_train) * settings.epochs / (time.perf_counter() - started)


def engine(data: MnistData, settings: TrainingSettings) -> float:
    reports = []
    started = time.perf_counter()
    train(data, settings, progress=reports.append)
    seconds = time.perf_counter() - started
    assert reports, "the engine reported no progress"
    return len(data.x_train) * settings.epochs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MNIST_DATA"))
    parser.add_argument("--arch", action="append", choices=list(ARCHITECTURES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "engine_throughput.json")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data or set MNIST_DATA")
    mnist = load_mnist(args.data)
    rows = []
    for arch in args.arch or list(ARCHITECTURES):
        n = IMAGES[arch]
        data = MnistData(mnist.x_train[:n], mnist.y_train[:n], mnist.x_test, mnist.y_test, "slice", "")
        settings = TrainingSettings(arch, epochs=1, batch_size=128, augment=arch == "best", validation_split=0)
        engine(data, settings)  # warm up both paths (tracing, thread pools)
        plain_fit(data, settings)
        plain, ours = [], []
        for _ in range(args.rounds):
            plain.append(plain_fit(data, settings))
            ours.append(engine(data, settings))
        row = {"architecture": arch, "images": n, "fit_images_per_s": round(float(np.median(plain))),
               "engine_images_per_s": round(float(np.median(ours))),
               "ratio": round(float(np.median(ours) / np.median(plain)), 3)}
        rows.append(row)
        print(f"{arch:9s} model.fit {row['fit_images_per_s']:7d} img/s   engine {row['engine_images_per_s']:7d} img/s"
              f"   ratio {row['ratio']:.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
