"""Teach it your handwriting: simulated users fine-tune the default on a few of their drawings.

Each simulated user is a writer the default was never trained on (mnist_core.sources.HELD_OUT_SETS):
pendigits writers 16-30, their pen strokes drawn as canvas drawings exactly as bench_robustness draws them
(seed 0), and CVL `valid` writers (scans, dark ink on light paper). For each writer, the first 1, 3 and 5 of a
fixed random order of each digit's drawings (nested) go into a DrawingStore as PNGs, as the page keeps them,
and mnist_core.adapt.finetune fine-tunes the default on that store's class folder. Every figure is measured
on the writer's OTHER drawings: all but those first five of each digit, the same ones for 1, 3 and 5, each
read from its PNG as the fine-tune reads a drawing. Reported, pooled over the writers: their error before
(the default) and after; the MNIST test error after; the fine-tune's wall time (reading, measurements, save).

    python benchmarks/bench_adapt.py [--writers 10] [--per-digit 1,3,5] [--data ../shared/data]
    /work/runs/quiet.sh python benchmarks/bench_adapt.py --timing   # 3 users of 100 drawings, timing only

Writes benchmarks/results/adapt.json (or adapt-timing.json with --timing).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_core.adapt import finetune
from mnist_core.data import load_mnist
from mnist_core.drawings import DrawingStore
from mnist_core.evaluation import predict_probabilities
from mnist_core.handwriting import PENDIGITS_TRAINING_WRITERS, load_cvl, load_pendigits, random_canvas_drawing
from mnist_core.identity import new_key, owner_of
from mnist_core.preprocessing import read_image_bytes, to_mnist
from mnist_core.store import ModelStore

ROOT = Path(__file__).resolve().parent.parent
GIVEN_MOST = 5  # the other drawings are those beyond the first 5 of each digit, whatever the user gives
# What issue #16 asks: with 3 drawings of each digit the pooled error at least halves, MNIST's rises by at
# most 0.15 points, and a fine-tune of up to 100 drawings takes at most 60 s.
TARGETS = {"error_ratio_at_3": 0.5, "mnist_rise_points": 0.15, "seconds_for_100": 60.0}


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def writers(folder: Path, n_per_source: int) -> list[tuple[str, list[bytes], np.ndarray]]:
    """(name, PNGs, labels) of the first ``n_per_source`` held-out writers of pendigits and of CVL."""
    pen = [d for d in load_pendigits(folder / "pendigits" / "pendigits-orig.tra")
           if d.writer not in PENDIGITS_TRAINING_WRITERS]
    rng = np.random.default_rng(0)  # bench_robustness' drawings: the same rng, in the same order
    drawn = [random_canvas_drawing(d, rng) for d in pen]
    found = []
    for writer in sorted({d.writer for d in pen})[:n_per_source]:
        mine = [i for i, d in enumerate(pen) if d.writer == writer]
        found.append((f"pendigits-{writer}", [png(drawn[i]) for i in mine], np.array([pen[i].label for i in mine])))
    images, labels, ids = load_cvl(folder / "cvl", "valid")
    for writer in sorted(set(ids.tolist()))[:n_per_source]:
        mine = np.flatnonzero(ids == writer)
        found.append((f"cvl-{writer}", [png(images[i]) for i in mine], labels[mine]))
    return found


def first_of_each_digit(labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Per digit, the indices of its drawings in a random order."""
    return [rng.permutation(np.flatnonzero(labels == digit)) for digit in range(10)]


def errors(model, images: np.ndarray, labels: np.ndarray) -> int:
    return int(np.sum(predict_probabilities(model, images).argmax(axis=1) != labels))


def adapt_one(store: ModelStore, mnist, pngs: list[bytes], labels: np.ndarray, chosen: np.ndarray, name: str):
    """Keep the chosen drawings in a fresh DrawingStore, fine-tune the default on it; (card, seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        drawings, owner = DrawingStore(folder), owner_of(new_key())
        for i in chosen:
            drawings.add(owner, pngs[i], int(labels[i]), model="default")
        started = time.perf_counter()
        card = finetune("default", drawings.images_dir(owner), name, store, mnist=mnist)
        return card, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"))
    parser.add_argument("--mnist", default=None, help="MNIST (default: $MNIST_DATA)")
    parser.add_argument("--writers", type=int, default=10, help="writers of each source (default: 10, 20 in all)")
    parser.add_argument("--per-digit", default="1,3,5")
    parser.add_argument("--timing", action="store_true",
                        help="only time 3 fine-tunes of 100 drawings (10 of each digit; pendigits writers)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--conditions", default="under load: other work ran on the machine meanwhile (times are "
                        "not the target's; see adapt-timing.json)", help="how busy the machine was, for the results")
    args = parser.parse_args()
    import keras

    mnist = load_mnist(args.mnist)
    base_store = ModelStore()
    base, base_card = base_store.load("default")
    work = Path(tempfile.mkdtemp(prefix="bench-adapt-"))
    store = ModelStore(work)
    for suffix in ("keras", "json", "tflite"):  # the shipped default, copied: the benchmark writes only here
        (work / f"default.{suffix}").write_bytes((base_store.directory / f"default.{suffix}").read_bytes())
    people = writers(args.data, 3 if args.timing else args.writers)

    if args.timing:
        rows = []
        for name, pngs, labels in people[:3]:
            order = first_of_each_digit(labels, np.random.default_rng(0))
            chosen = np.concatenate([o[:10] for o in order])
            card, seconds = adapt_one(store, mnist, pngs, labels, chosen, f"{name}-100")
            rows.append({"writer": name, "drawings": len(chosen), "seconds": round(seconds, 1),
                         "mnist_test_error": card.test_error})
            print(rows[-1], flush=True)
            keras.backend.clear_session()
        out = args.out or ROOT / "benchmarks" / "results" / "adapt-timing.json"
        out.write_text(json.dumps({"date": datetime.now(timezone.utc).date().isoformat(), "machine": "2 cores",
                                   "conditions": "quiet (/work/runs/quiet.sh: background training paused)",
                                   "rows": rows, "max_seconds": max(r["seconds"] for r in rows),
                                   "target_seconds": TARGETS["seconds_for_100"]}, indent=1))
        return

    ks = [int(k) for k in args.per_digit.split(",")]
    rows = []
    for number, (name, pngs, labels) in enumerate(people):
        order = first_of_each_digit(labels, np.random.default_rng(number))
        others = np.concatenate([o[GIVEN_MOST:] for o in order])
        test = np.stack([to_mnist(read_image_bytes(pngs[i])).image for i in others])
        row = {"writer": name, "others": len(others), "errors_before": errors(base, test, labels[others])}
        for k in ks:
            chosen = np.concatenate([o[:k] for o in order])
            card, seconds = adapt_one(store, mnist, pngs, labels, chosen, f"{name}-{k}")
            model, _ = store.load(card.name)
            a = card.adaptation
            row[str(k)] = {"errors_after": errors(model, test, labels[others]), "mnist_test_error": card.test_error,
                           "seconds": round(seconds, 1), "held_back": a.held_back,
                           "held_back_before": a.accuracy_before, "held_back_after": a.accuracy_after}
            keras.backend.clear_session()
        rows.append(row)
        print(json.dumps(row), flush=True)

    total = sum(r["others"] for r in rows)
    before = 100.0 * sum(r["errors_before"] for r in rows) / total
    summary = {}
    for k in ks:
        after = 100.0 * sum(r[str(k)]["errors_after"] for r in rows) / total
        mnist_errors = [r[str(k)]["mnist_test_error"] for r in rows]
        summary[str(k)] = {
            "pooled_error_before": round(before, 3), "pooled_error_after": round(after, 3),
            "error_ratio": round(after / before, 3) if before else None,
            "mnist_test_error_mean": round(float(np.mean(mnist_errors)), 3),
            "mnist_test_error_max": max(mnist_errors),
            "seconds_median": float(np.median([r[str(k)]["seconds"] for r in rows])),
            "seconds_max": max(r[str(k)]["seconds"] for r in rows),
        }
    out = args.out or ROOT / "benchmarks" / "results" / "adapt.json"
    out.write_text(json.dumps({
        "date": datetime.now(timezone.utc).date().isoformat(), "machine": "2 cores",
        "conditions": args.conditions,
        "base": {"model": "default", "mnist_test_error": base_card.test_error},
        "writers": len(rows), "other_drawings": total, "summary": summary, "targets": TARGETS, "rows": rows,
    }, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
