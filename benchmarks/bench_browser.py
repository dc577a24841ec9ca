"""The page's speed in a real browser: server start to a usable page, and mouse-up to the new prediction.

Starts ``streamlit run app.py`` on the shipped model store (``models/``) and opens it in
headless Chromium (see tests/app_driver.py), ``--starts`` times: each time, the seconds from
launching the server to its health check, to the canvas on screen, and to the model loaded
(the page's "Draw a digit" hint appears only then). Then draws real pen digits
(``--per-class`` of each class, from ``$HANDWRITING_DATA/pendigits``) with the mouse, clearing
the canvas between them, and times mouse-up to the new prediction on screen; then the same
digits again with the "Why?" view on (saliency, feature maps and layers follow each stroke), and
once more at a phone's size (390x844), drawn with touch events.

    python benchmarks/bench_browser.py [--models-dir models] [--starts 3] [--per-class 3]

Prints the figures, median and p95, and writes them to benchmarks/results/browser.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser driver the tests use (tests/app_driver.py)

import app_driver as driver
from playwright.sync_api import sync_playwright

from mnist_core.handwriting import canvas_points, load_pendigits
from mnist_core.store import ModelStore


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"),
                        help="the handwriting folder (default: $HANDWRITING_DATA)")
    parser.add_argument("--starts", type=int, default=3, help="server starts to time")
    parser.add_argument("--per-class", type=int, default=3, help="digits of each class to draw")
    parser.add_argument("--out", type=Path, default=driver.RESULTS)
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set HANDWRITING_DATA")
    entry = ModelStore(args.models_dir).inspect("default")
    if not entry.ok:
        print(f"error: no usable default model in {args.models_dir}: {entry.problem}", file=sys.stderr)
        return 1
    digits = driver.choose_digits(load_pendigits(args.data / "pendigits" / "pendigits-orig.tra"), args.per_class)
    measured, with_why, on_phone = driver.Measurements(), driver.Measurements(), driver.Measurements()

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = driver.launch(p)
        starts = []
        for i in range(args.starts):
            server = driver.start_server(args.models_dir, Path(tmp) / f"server-{i}.log")
            try:
                starts.append(driver.startup_times(server, browser))
                if i == args.starts - 1:
                    page = driver.open_page(browser, server.url)
                    for digit in digits:
                        driver.draw_digit(page, digit)
                        text, ms = driver.read_prediction(page)
                        measured.drawn.append((digit.label, text, ms))
                        driver.clear(page)
                    # The same digits with the "Why?" view on: saliency, feature maps and layers at every stroke.
                    page.get_by_text("Why? Show what the network looked at").click()
                    for digit in digits:
                        driver.draw_digit(page, digit)
                        text, ms = driver.read_prediction(page)
                        with_why.drawn.append((digit.label, text, ms))
                        driver.clear(page)
                    # At a phone's size, drawn with a finger (touch events).
                    phone = driver.open_page(browser, server.url, device=driver.PHONE)
                    for digit in digits:
                        driver.touch_draw(phone, canvas_points(digit, canvas_size=driver.CANVAS_SIZE,
                                                               stroke_width=driver.PEN_WIDTH))
                        text, ms = driver.read_prediction(phone)
                        on_phone.drawn.append((digit.label, text, ms))
                        driver.clear(phone)
            finally:
                server.stop()
        browser.close()

    measured.startup = {key: round(statistics.median(s[key] for s in starts), 2) for key in starts[0]}
    measured.startup["starts"] = len(starts)
    card = entry.card
    model = {"name": "default", "architecture": card.architecture, "test_error": card.test_error,
             "n_test": card.test_set.n_test}
    result = measured.write(args.out, "benchmarks/bench_browser.py", model)
    result["stroke_to_prediction_with_why"] = with_why.latency_summary()
    result["stroke_to_prediction_phone_touch"] = {**on_phone.latency_summary(), "viewport": "390x844",
                                                  "drawn_correct": f"{round(on_phone.accuracy() * len(digits))}"
                                                                   f"/{len(digits)}"}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    latency, why = result["stroke_to_prediction"], result["stroke_to_prediction_with_why"]
    print(f"model: default ({card.architecture}, {card.test_error:.2f}% test error)")
    print(f"first visit after a start: the title on screen {measured.startup['first_visit_to_title_s']} s after the "
          "visit")
    print(f"startup, median of {len(starts)}: health {measured.startup['health_s']} s, canvas on screen "
          f"{measured.startup['canvas_visible_s']} s, model loaded {measured.startup['model_ready_s']} s")
    print(f"mouse-up to prediction over {latency['n']} drawn digits: median {latency['median_ms']} ms, "
          f"p95 {latency['p95_ms']} ms ({result['drawn_correct']} recognised)")
    print(f"the same with the Why? view on: median {why['median_ms']} ms, p95 {why['p95_ms']} ms")
    phone = result["stroke_to_prediction_phone_touch"]
    print(f"at 390x844, drawn with touch: median {phone['median_ms']} ms, p95 {phone['p95_ms']} ms "
          f"({phone['drawn_correct']} recognised)")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    print("each start:", json.dumps(starts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
