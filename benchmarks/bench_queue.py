"""A class at once: ten users press Train within 10 s while three others draw; the queue's times and the drawing's.

For each number of workers (``--workers 1 2``: ``MNIST_TRAINING_WORKERS``) a fresh page server is started on a
copy of the shipped model store, training on a 2,000-image real MNIST slice. ``--users`` users, each a
Chromium tab of their own (a real Streamlit session over loopback), press Train one after another within
``--within`` seconds: the ``quick`` preset's network and settings for ``--epochs`` epochs (1: the benchmark
measures the queue, not the training). Meanwhile ``--drawers`` users, each with their own Chromium, draw real
pen digits without pause. Reported: whether every training completed and none was refused, the total time
from the first press to the last model, each user's wait (press to their training starting, as their page
shows it) and time to their model, and the drawers' mouse-up to prediction while the queue ran (median,
p95; target p95 <= 500 ms). Only 127.0.0.1 is contacted.

    python benchmarks/bench_queue.py [--workers 1 2] [--users 10] [--drawers 3] [--epochs 1]

Prints and writes benchmarks/results/queue.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser driver the tests use (tests/app_driver.py)

import app_driver as driver  # noqa: E402 - after the sys.path line
import numpy as np  # noqa: E402 - after the sys.path line
from playwright.sync_api import sync_playwright  # noqa: E402 - after the sys.path line

from mnist_core.data import load_mnist  # noqa: E402 - after the sys.path line
from mnist_core.handwriting import load_pendigits  # noqa: E402 - after the sys.path line

TIMEOUT = 900  # seconds for one run's trainings, at most


def draw_until(url: str, digits, stop: threading.Event, ready: threading.Barrier, out: list, errors: list) -> None:
    """One drawing user: draw digit after digit until ``stop``; ``out`` gets (time, ms) per prediction."""
    try:
        with sync_playwright() as p:
            browser = driver.launch(p)
            page = driver.open_page(browser, url)
            ready.wait()
            i = 0
            while not stop.is_set():
                driver.draw_digit(page, digits[i % len(digits)])
                _, ms = driver.read_prediction(page)
                out.append((time.monotonic(), ms))
                driver.clear(page)
                i += 1
            browser.close()
    except Exception as exc:  # a broken session is a finding, not a crash of the harness
        errors.append(f"drawer: {type(exc).__name__}: {exc}")
        ready.abort()


def one_run(args, workers: int, models: Path, data: Path, digits) -> dict:
    os.environ["MNIST_TRAINING_WORKERS"] = str(workers)  # start_server passes the environment on
    with tempfile.TemporaryDirectory() as tmp:
        server = driver.start_server(models, Path(tmp) / "server.log", data=data)
        stop, errors = threading.Event(), []
        ready = threading.Barrier(args.drawers + 1)
        drawn = [[] for _ in range(args.drawers)]
        drawers = [threading.Thread(target=draw_until, args=(server.url, digits[i::args.drawers], stop, ready,
                                                             drawn[i], errors)) for i in range(args.drawers)]
        try:
            for t in drawers:
                t.start()
            with sync_playwright() as p:
                browser = driver.launch(p)
                names = [f"w{workers}-user{i + 1:02d}" for i in range(args.users)]
                pages = [driver.open_page(browser, server.url) for _ in names]
                ready.wait(timeout=300)
                pressed, seen = {}, {name: {} for name in names}
                first = time.monotonic()
                for i, (page, name) in enumerate(zip(pages, names, strict=True)):
                    time.sleep(max(0.0, first + i * args.within / args.users - time.monotonic()))
                    driver.press_train(page, name, args.epochs)
                    pressed[name] = time.monotonic()
                while not all("trained" in s or "refused" in s for s in seen.values()):
                    if time.monotonic() - first > TIMEOUT:
                        errors.append(f"not all trainings finished within {TIMEOUT} s")
                        break
                    for page, name in zip(pages, names, strict=True):
                        state = driver.training_state(page, name)
                        if state:
                            seen[name].setdefault(state, time.monotonic())
                    time.sleep(0.2)
                last = max((s.get("trained", first) for s in seen.values()), default=first)
                browser.close()
        finally:
            stop.set()
            for t in drawers:
                t.join(timeout=120)
            server.stop()
    during = [ms for run in drawn for t, ms in run if first <= t <= last]
    users = {}
    for name in names:
        s, t0 = seen[name], pressed[name]
        began = min((s[k] for k in ("training", "trained") if k in s), default=None)
        users[name] = {"state": "refused" if "refused" in s else "trained" if "trained" in s else "unfinished",
                       "waited_s": round(began - t0, 1) if began is not None else None,
                       "to_model_s": round(s["trained"] - t0, 1) if "trained" in s else None}
    waits = [u["waited_s"] for u in users.values() if u["waited_s"] is not None]
    return {
        "workers": workers,
        "completed": sum(u["state"] == "trained" for u in users.values()),
        "refused": sum(u["state"] == "refused" for u in users.values()),
        "submitted_within_s": round(max(pressed.values()) - first, 1),
        "total_s": round(last - first, 1),
        "wait_s": {"median": round(statistics.median(waits), 1) if waits else None,
                   "max": max(waits) if waits else None},
        "users": users,
        "drawing_while_queued": {
            "predictions": len(during),
            "median_ms": round(statistics.median(during), 1) if during else None,
            "p95_ms": round(float(np.percentile(during, 95)), 1) if during else None,
        },
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_DATA"), help="default: $MNIST_DATA")
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"),
                        help="handwriting folder (default: $HANDWRITING_DATA)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--drawers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--within", type=float, default=10.0, help="seconds in which every user presses Train")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "queue.json")
    args = parser.parse_args()
    if args.data is None or args.mnist is None:
        parser.error("set HANDWRITING_DATA and MNIST_DATA (or give --data and --mnist)")
    digits = driver.choose_digits(load_pendigits(args.data / "pendigits" / "pendigits-orig.tra"), 5)
    mnist = load_mnist(args.mnist)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mnist-2k.npz"
        np.savez(data, x_train=mnist.x_train[:2000], y_train=mnist.y_train[:2000],
                 x_test=mnist.x_test[:500], y_test=mnist.y_test[:500])
        for workers in args.workers:
            models = Path(tmp) / f"models-{workers}"  # a copy: the benchmark's trainings never write into models/
            models.mkdir()
            for suffix in (".keras", ".json", ".tflite"):
                shutil.copy(args.models_dir / f"default{suffix}", models / f"default{suffix}")
            run = one_run(args, workers, models, data, digits)
            d = run["drawing_while_queued"]
            w = run["wait_s"]
            print(f"W={workers}: {run['completed']}/{args.users} trained, {run['refused']} refused, submitted within "
                  f"{run['submitted_within_s']} s, all done in {run['total_s']} s; wait median {w['median']} s, "
                  f"max {w['max']} s; drawing: {d['predictions']} predictions, median {d['median_ms']} ms, "
                  f"p95 {d['p95_ms']} ms; errors {run['errors']}", flush=True)
            runs.append(run)
    result = {"source": "benchmarks/bench_queue.py", "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": f"{os.cpu_count()} cores", "training": f"the quick preset's settings, {args.epochs} epoch(s), "
              "on 2,000 real MNIST digits (500 tested)", "users": args.users, "drawers": args.drawers, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    ok = all(r["completed"] == args.users and not r["refused"] and not r["errors"] for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
