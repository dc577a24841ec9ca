"""Latency of recognising one drawing: preprocessing, forward pass and total, beside `model.predict`.

The model is loaded once. Each of N real pen digits drawn on a 280x280 RGBA
canvas (as the app's canvas returns it) is recognised one at a time, and the
same 28x28 images are also given to Keras' `model.predict` one at a time.
The page's case is timed too: Streamlit calls `keras.backend.clear_session()`
after every script run, so there each drawing follows one.

    python benchmarks/bench_predictor.py [--model default] [--n 300]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from mnist_core.architectures import as_model_input
from mnist_core.handwriting import load_pendigits, random_canvas_drawing
from mnist_core.predictor import Predictor
from mnist_core.preprocessing import to_mnist
from mnist_core.store import ModelStore

ROOT = Path(__file__).resolve().parent.parent


def timed(call, inputs, before=None) -> np.ndarray:
    """Milliseconds per call of ``call`` on each input, each call preceded (untimed) by ``before()`` if given."""
    call(inputs[0])
    out = []
    for item in inputs:
        if before is not None:
            before()
        started = time.perf_counter()
        call(item)
        out.append(1000 * (time.perf_counter() - started))
    return np.array(out)


def streamlit_after_run() -> None:
    """What Streamlit does after every script run, so before every drawing on the page."""
    keras.backend.clear_session(free_memory=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"))
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.out = args.out or ROOT / "benchmarks" / "results" / "predictor.json"
    if args.data is None:
        parser.error("give --data or set HANDWRITING_DATA")
    predictor = Predictor.load(args.model, ModelStore(args.models_dir))
    digits = load_pendigits(args.data / "pendigits" / "pendigits-orig.tra")
    rng = np.random.default_rng(0)
    chosen = [digits[i] for i in np.linspace(0, len(digits) - 1, args.n).astype(int)]
    canvases = [random_canvas_drawing(d, rng) for d in chosen]
    images28 = [to_mnist(c).image for c in canvases]

    rows = {
        "preprocessing (to_mnist)": timed(to_mnist, canvases),
        "forward pass (Predictor)": timed(lambda x: predictor.probabilities(x[None]), images28),
        "total: Predictor.predict": timed(predictor.predict, canvases),
        "total, after clear_session (page)": timed(predictor.predict, canvases, before=streamlit_after_run),
        "keras model(x), eager (forward only)": timed(
            lambda x: predictor.model(as_model_input(x[None]), training=False), images28),
        "keras model.predict (forward only)": timed(
            lambda x: predictor.model.predict(as_model_input(x[None]), verbose=0), images28),
    }
    print(f"model {args.model!r} ({predictor.card.architecture}), {args.n} drawings, 280x280 RGBA, "
          f"{os.cpu_count()} cores")
    print(f"{'':36s} {'median ms':>10s} {'p95 ms':>8s}")
    summary = {}
    for name, ms in rows.items():
        summary[name] = {"median_ms": round(float(np.median(ms)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}
        print(f"{name:36s} {summary[name]['median_ms']:10.3f} {summary[name]['p95_ms']:8.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "n": args.n, "latency": summary},
                                   indent=1))


if __name__ == "__main__":
    main()
