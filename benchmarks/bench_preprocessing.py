"""How fast, and how good, is the preprocessing of drawings into MNIST-style digits?

Speed: real pen digits (UCI pendigits) are drawn on 280x280 canvases the way the
benchmark protocol has users draw (``random_canvas_drawing``, seed 0), and
``to_mnist`` is timed on each; the script prints the median and 95th percentile.

    python benchmarks/bench_preprocessing.py [--data ../shared/data]

Accuracy through this preprocessing (with and without the stroke-width step,
against the naive pipeline) is measured by ``bench_robustness.py``.
With ``--mnist-widths`` it measures MNIST's stroke widths, the source of
``preprocessing.MNIST_RELATIVE_WIDTH`` (reads MNIST from ``MNIST_DATA``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_core import preprocessing
from mnist_core.handwriting import (
    load_pendigits,
    random_canvas_drawing,
    render_pen_digit,
)
from mnist_core.preprocessing import to_mnist


def drawings(data: Path, count: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` pen digits spread over the whole file, drawn with the benchmark protocol."""
    digits = load_pendigits(data / "pendigits" / "pendigits-orig.tra")
    chosen = [digits[i] for i in np.linspace(0, len(digits) - 1, count).astype(int)]
    rng = np.random.default_rng(seed)
    return [random_canvas_drawing(d, rng) for d in chosen], np.array([d.label for d in chosen])


def time_calls(images: list[np.ndarray], repeats: int, **options) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and CPU seconds taken by each call of to_mnist, over ``repeats`` passes.

    CPU time (of this thread) leaves out the time spent waiting while other
    processes use the cores, so it is the fairer figure on a busy machine.
    """
    to_mnist(images[0], **options)  # warm up
    wall, cpu = [], []
    for _ in range(repeats):
        for image in images:
            start, start_cpu = time.perf_counter(), time.thread_time()
            to_mnist(image, **options)
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
    return np.array(wall), np.array(cpu)


def report_speed(data: Path, count: int, repeats: int) -> None:
    canvases, _ = drawings(data, count)
    digits = load_pendigits(data / "pendigits" / "pendigits-orig.tra")[:count]
    transparent = [render_pen_digit(d, 280, background=(0, 0, 0, 0)) for d in digits]
    large = [render_pen_digit(d, 400, 24, ink=(0, 0, 0, 255), background=(255, 255, 255, 255)) for d in digits]
    cases = [
        ("280x280 RGBA, white on black (protocol)", canvases, {}),
        ("  same, without stroke-width step", canvases, {"normalise_width": False}),
        ("280x280 RGBA, transparent background", transparent, {}),
        ("400x400 RGBA, black on white", large, {}),
    ]
    print(f"to_mnist over {count} real pen drawings x {repeats} passes, in ms (wall clock; CPU time):")
    for name, images, options in cases:
        wall, cpu = (t * 1000 for t in time_calls(images, repeats, **options))
        print(
            f"  {name:42s} median {np.median(wall):.3f}  p95 {np.percentile(wall, 95):.3f}"
            f"   (CPU median {np.median(cpu):.3f}  p95 {np.percentile(cpu, 95):.3f})"
        )



def report_mnist_widths() -> None:
    from mnist_core.data import load_mnist

    x = load_mnist().x_train[::6]
    relative = []
    for image in x:
        ink = preprocessing._ink(preprocessing._as_pillow(image))
        digit = preprocessing._scale_longer_side(ink.crop(ink.getbbox()), preprocessing.WORK_SIZE, Image.Resampling.BOX)
        relative.append(preprocessing.stroke_width(np.asarray(digit)) / max(digit.size))
    low, median, high = np.percentile(relative, [10, 50, 90])
    print(
        f"\nMNIST stroke width / longer side over {len(x)} training digits: "
        f"median {median:.3f} (10th-90th percentiles {low:.3f}-{high:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("HANDWRITING_DATA") or str(Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--data", type=Path, default=Path(default_data), help="folder holding pendigits/, usps/, ...")
    parser.add_argument("--count", type=int, default=300, help="pen drawings to time")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the drawings")
    parser.add_argument("--mnist-widths", action="store_true", help="measure MNIST's stroke widths")
    args = parser.parse_args()
    if not (args.data / "pendigits" / "pendigits-orig.tra").is_file():
        parser.error(f"{args.data} does not hold pendigits/pendigits-orig.tra; pass --data or set HANDWRITING_DATA")

    report_speed(args.data, args.count, args.repeats)
    if args.mnist_widths:
        if not os.environ.get("MNIST_DATA"):
            parser.error("--mnist-widths reads MNIST from MNIST_DATA; set it to the folder of the IDX files")
        report_mnist_widths()


if __name__ == "__main__":
    main()
