"""Time mnist_core.data.load_mnist on real MNIST.

    python benchmarks/bench_load.py [--data DIR] [--repeat 10] [--csv-rows 42000]

Times ``load_mnist`` on the directory of the four gzipped IDX files (``--data``, default
``$MNIST_DATA``), repeated: each call reads, decompresses, parses and checks everything again; only
the operating system's file cache is warm after the first. Then writes a Kaggle Digit Recognizer
``train.csv`` of ``--csv-rows`` real digits (42,000 as Kaggle's) to a temporary directory and times
loading it. Prints a table; exits 1 when the best IDX load misses ``--target`` seconds (default 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_core.data import ENV_VAR, load_kaggle_csv, load_mnist


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    table = np.column_stack([labels.astype(np.int64), images.reshape(len(images), -1).astype(np.int64)])
    header = ",".join(["label", *(f"pixel{i}" for i in range(images[0].size))])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get(ENV_VAR), help=f"MNIST IDX directory (default ${ENV_VAR})")
    parser.add_argument("--repeat", type=int, default=10, help="loads of the IDX directory (default 10)")
    parser.add_argument("--csv-rows", type=int, default=42_000, help="rows of the Kaggle CSV (default 42000)")
    parser.add_argument("--csv-repeat", type=int, default=3, help="loads of the CSV (default 3)")
    parser.add_argument("--target", type=float, default=1.0, help="seconds the best IDX load must beat (default 1)")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error(f"give --data DIR or set {ENV_VAR}")
    data = Path(args.data)
    if not data.is_dir():
        parser.error(f"{data}: not a directory of the four MNIST IDX files")

    rows = []
    idx_times, mnist = timed(lambda: load_mnist(data), args.repeat)
    rows.append((f"IDX .gz directory ({len(mnist.x_train):,} + {len(mnist.x_test):,})", idx_times))

    n = min(args.csv_rows, len(mnist.x_train))
    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        csv_path = Path(tmp) / "train.csv"
        start = time.perf_counter()
        write_kaggle_csv(csv_path, mnist.x_train[:n], mnist.y_train[:n])
        write_time = time.perf_counter() - start
        size_mb = csv_path.stat().st_size / 1e6
        csv_times, (x, y) = timed(lambda: load_kaggle_csv(csv_path), args.csv_repeat)
        if not (np.array_equal(x, mnist.x_train[:n]) and np.array_equal(y, mnist.y_train[:n])):
            print("error: the CSV did not load back to the images and labels written", file=sys.stderr)
            return 2
        split_times, split = timed(lambda: load_mnist(csv_path, csv_split="tutorial"), args.csv_repeat)
    rows.append((f"Kaggle CSV, {n:,} rows, {size_mb:.0f} MB (load_kaggle_csv)", csv_times))
    val = 0 if split.x_val is None else len(split.x_val)
    rows.append(
        (f"  same, load_mnist tutorial split {len(split.x_train):,}/{val:,}/{len(split.x_test):,}", split_times)
    )

    width = max(len(name) for name, _ in rows)
    print(f"{'source':<{width}}  {'runs':>4}  {'min s':>7}  {'median s':>8}")
    for name, times in rows:
        print(f"{name:<{width}}  {len(times):>4}  {min(times):>7.3f}  {statistics.median(times):>8.3f}")
    print(f"(writing the CSV took {write_time:.2f} s; CPUs: {os.cpu_count()}, load average: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())})")
    best = min(idx_times)
    verdict = "meets" if best < args.target else "MISSES"
    print(f"full MNIST from gzipped IDX: best {best:.3f} s {verdict} the {args.target:g} s target")
    return 0 if best < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
