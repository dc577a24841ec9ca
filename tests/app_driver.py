"""Drive the page in headless Chromium: start the server, draw real pen strokes, read the prediction.

Shared by ``tests/test_browser.py`` and ``benchmarks/bench_browser.py``. Chromium is
Debian's (``/usr/bin/chromium``), launched with the flags ``../shared/README.md`` gives.

Timing is read in the page itself: a script records the time of every ``mouseup`` and
of every change of the shown prediction (the "Prediction" metric or the 28x28 image
beside it), so a latency is "mouse released" to "new prediction on screen", as a user
sees it, without the cost of Playwright's round trips.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_core.handwriting import PenDigit, canvas_points

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CANVAS = "canvas.upper-canvas"  # fabric.js's top canvas, which takes the mouse
CANVAS_SIZE = 300  # app.CANVAS_SIZE
PEN_WIDTH = 20  # the page's default
HINT = "Draw a digit"
TITLE = "Handwritten digit recogniser"
# streamlit-drawable-canvas 0.13 sends a drawing 200 ms after the last mouse-up (if no new stroke ends
# meanwhile): a prediction shown sooner after the last mouse-up is that of an earlier, unfinished drawing.
SEND_DELAY_MS = 200
RESULTS = ROOT / "benchmarks" / "results" / "browser.json"

LATENCY_RECORDER = """
(() => {
  const lat = window.__lat = {lastUp: 0, updates: [], key: ""};
  window.addEventListener("mouseup", () => { lat.lastUp = performance.now(); }, true);
  window.addEventListener("touchend", () => { lat.lastUp = performance.now(); }, true);
  const shown = () => {
    for (const metric of document.querySelectorAll('[data-testid="stMetric"]')) {
      const label = metric.querySelector('[data-testid="stMetricLabel"]');
      if (label && label.textContent.trim() === "Prediction") {
        const value = metric.querySelector('[data-testid="stMetricValue"]');
        const image = document.querySelector('img[alt^="The 28×28 image the model sees"]');
        return [value ? value.textContent.trim() : "", image ? image.src : ""];
      }
    }
    return ["", ""];
  };
  new MutationObserver(() => {
    const [text, src] = shown();
    const key = text + "|" + src;
    if (key !== lat.key) {
      lat.key = key;
      if (text) lat.updates.push({t: performance.now(), text});
    }
  }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})();
"""


# --- the server ---------------------------------------------------------------------------------


@dataclass
class Server:
    """A ``streamlit run app.py`` process, its address, and when it was started."""

    process: subprocess.Popen
    url: str
    started: float  # time.perf_counter() at launch
    log: Path
    health_seconds: float = 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models_dir: Path, log: Path, data: Path | None = None, port: int | None = None,
                 timeout: float = 120, drawings_dir: Path | None = None) -> Server:
    """Start the page on a free port with ``MNIST_MODELS_DIR`` (and ``MNIST_DATA``); wait until it is healthy.

    Its ``MNIST_DRAWINGS_DIR`` is ``drawings_dir``, by default ``drawings`` beside the log: never the project's."""
    port = port or free_port()
    drawings_dir = drawings_dir if drawings_dir is not None else log.parent / "drawings"
    env = dict(os.environ, MNIST_MODELS_DIR=str(models_dir), MNIST_DRAWINGS_DIR=str(drawings_dir),
               PYTHONUNBUFFERED="1")
    if data is not None:
        env["MNIST_DATA"] = str(data)
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1"]
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", started, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the server was not healthy within {timeout} s; see {log}")
        time.sleep(0.05)
    server.health_seconds = time.perf_counter() - started
    return server


# --- the page ---------------------------------------------------------------------------------


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def chromium_browser():
    """Headless Chromium for a module's tests (a module-scoped fixture yields it); skips them without it."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()


def store_with_default(store: Path, data: Path, epochs: int) -> Path:
    """``store`` holding ``default``: a copy of the shipped model if it is there and sound, else a ``simple`` CNN
    trained now for ``epochs`` on ``data`` (an .npz of real MNIST)."""
    from mnist_core.store import ModelStore

    shipped = ModelStore(ROOT / "models")
    if shipped.inspect("default").ok:
        for suffix in (".keras", ".json", ".tflite"):
            shutil.copy(shipped.directory / f"default{suffix}", store / f"default{suffix}")
    else:
        subprocess.run([sys.executable, "-m", "mnist_core", "--models-dir", str(store), "train", "--arch", "simple",
                        "--epochs", str(epochs), "--data", str(data), "--name", "default"],
                       cwd=ROOT, check=True, capture_output=True, text=True)
    return store


DESKTOP = {"viewport": {"width": 1400, "height": 950}}
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}


def open_page(browser, url: str, timeout: float = 120, device: dict = DESKTOP):
    """A new page (in a new browser context: a separate user) showing the app, ready to draw.

    ``device``: :data:`DESKTOP` (1400x950, a mouse) or :data:`PHONE` (390x844, touch)."""
    context = browser.new_context(**device)
    page = context.new_page()
    page.add_init_script(LATENCY_RECORDER)
    page.goto(url)
    page.locator(CANVAS).wait_for(state="visible", timeout=timeout * 1000)
    page.get_by_text(HINT).wait_for(state="visible", timeout=timeout * 1000)
    return page


def startup_times(server: Server, browser, timeout: float = 120) -> dict:
    """Open the page once, just after the server started: seconds from launch to health, canvas and model,
    and from the visit to the page's title on screen (the first visitor's wait for something to see)."""
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    visited = time.perf_counter()
    page.goto(server.url)
    page.get_by_text(TITLE).wait_for(state="visible", timeout=timeout * 1000)
    first_paint = time.perf_counter() - visited
    page.locator(CANVAS).wait_for(state="visible", timeout=timeout * 1000)
    canvas = time.perf_counter() - server.started
    page.get_by_text(HINT).wait_for(state="visible", timeout=timeout * 1000)  # shown once the model is loaded
    ready = time.perf_counter() - server.started
    context.close()
    return {"health_s": round(server.health_seconds, 2), "first_visit_to_title_s": round(first_paint, 2),
            "canvas_visible_s": round(canvas, 2), "model_ready_s": round(ready, 2)}


def draw(page, strokes: list[np.ndarray]) -> None:
    """Draw ``strokes`` (canvas pixel coordinates) with the mouse: down, moves, up for each."""
    box = page.locator(CANVAS).bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()


def touch_draw(page, strokes: list[np.ndarray]) -> None:
    """Draw ``strokes`` with a finger: real touch events (start, moves, end) through Chromium's DevTools."""
    box = page.locator(CANVAS).bounding_box()
    cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [{"x": box["x"] + x, "y": box["y"] + y} for x, y in stroke]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
        for point in points[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def draw_number(page, digits: list[PenDigit], size: int = 66, pen_width: int = 8) -> None:
    """Draw ``digits`` side by side with the mouse, each in a ``size`` square, left to right, mid-canvas."""
    left = (CANVAS_SIZE - len(digits) * size) / 2
    for i, digit in enumerate(digits):
        strokes = canvas_points(digit, canvas_size=size, stroke_width=pen_width)
        draw(page, [s + np.array([left + i * size, (CANVAS_SIZE - size) / 2]) for s in strokes])


def draw_digit(page, digit: PenDigit) -> None:
    draw(page, canvas_points(digit, canvas_size=CANVAS_SIZE, stroke_width=PEN_WIDTH))


def canvas_toolbar_shown(page) -> bool:
    """Whether the canvas component's own toolbar (in its shadow root: Undo, Edit, ...) is on screen, with the
    pointer over the canvas, where it would show."""
    page.locator(CANVAS).hover()
    page.wait_for_timeout(400)  # its fade-in: 0.15 s after a 0.1 s delay
    return page.evaluate("""() => {
      for (const host of document.querySelectorAll("*")) {
        const toolbar = host.shadowRoot && host.shadowRoot.querySelector(".dc-toolbar");
        if (toolbar) return getComputedStyle(toolbar).display !== "none" && toolbar.getBoundingClientRect().width > 0;
      }
      return null;
    }""")


def clear(page, timeout: float = 30) -> None:
    """Clear the canvas with the page's Clear button, then wait for the hint."""
    page.get_by_role("button", name="Clear", exact=True).click()
    page.get_by_text(HINT).wait_for(state="visible", timeout=timeout * 1000)


CONTRAST = """
(selectors) => {
  const parse = c => {
    const p = c.match(/[\\d.]+/g).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const luminance = c => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const behind = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const ratio = (el, backdrop) => {
    let fg = parse(getComputedStyle(el).color), alpha = fg.a;
    for (let e = el; e; e = e.parentElement) alpha *= Number(getComputedStyle(e).opacity);
    const bg = behind(backdrop || el);
    const mix = k => fg[k] * alpha + bg[k] * (1 - alpha);
    const seen = {r: mix("r"), g: mix("g"), b: mix("b")};
    const [hi, lo] = [luminance(seen), luminance(bg)].sort((a, b) => b - a);
    return (hi + 0.05) / (lo + 0.05);
  };
  const out = [];
  for (const [name, selector, backdrop] of selectors)
    for (const el of document.querySelectorAll(selector))
      if (el.offsetParent !== null && el.innerText.trim())
        out.push([name, el.innerText.trim().slice(0, 50), ratio(el, backdrop ? el.closest(backdrop) : null)]);
  return out;
}
"""


def contrast(page, selectors: list[tuple[str, str, str | None]]) -> list[tuple[str, str, float]]:
    """WCAG contrast ratios of the visible text of each (name, CSS selector, backdrop selector or None), as
    rendered: the text's colour and opacity over the first opaque background behind it (or behind its backdrop,
    for text drawn beside its element, such as a slider's value above the thumb)."""
    return [tuple(row) for row in page.evaluate(CONTRAST, [list(s) for s in selectors])]


def read_prediction(page, timeout: float = 30) -> tuple[str, float]:
    """The prediction of the whole drawing, and how long (ms) after the last mouse-up it appeared."""
    after = f"u => u.t > window.__lat.lastUp + {SEND_DELAY_MS - 5}"
    page.wait_for_function(f"() => window.__lat.updates.some({after})", timeout=timeout * 1000, polling=20)
    update = page.evaluate(
        f"() => {{ const u = window.__lat.updates.find({after});"
        " return {text: u.text, ms: u.t - window.__lat.lastUp}; }"
    )
    return update["text"], float(update["ms"])


def choose_digits(digits: list[PenDigit], per_class: int) -> list[PenDigit]:
    """``per_class`` digits of each class, spread over the file (so over its writers), in class order."""
    chosen = []
    for label in range(10):
        of_class = [d for d in digits if d.label == label]
        step = len(of_class) // per_class
        chosen += [of_class[i * step] for i in range(per_class)]
    return chosen


# --- results ----------------------------------------------------------------------------------


@dataclass
class Measurements:
    """What a run measured: startup times, and per drawn digit its label, the prediction and the latency."""

    startup: dict = field(default_factory=dict)
    drawn: list[tuple[int, str, float]] = field(default_factory=list)

    def latency_summary(self) -> dict:
        ms = [m for _, _, m in self.drawn]
        if not ms:
            return {}
        return {"n": len(ms), "median_ms": round(statistics.median(ms), 1),
                "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(max(ms), 1)}

    def accuracy(self) -> float:
        return sum(str(label) == text for label, text, _ in self.drawn) / max(len(self.drawn), 1)

    def write(self, path: Path, source: str, model: dict) -> dict:
        result = {
            "source": source,
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": model,
            "machine": {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
            "startup": self.startup,
            "stroke_to_prediction": self.latency_summary(),
            "drawn_correct": f"{sum(str(a) == b for a, b, _ in self.drawn)}/{len(self.drawn)}",
            "note": "latency is mouse-up to the new prediction on screen, in the page's clock; it includes "
                    "the canvas component's 200 ms wait for more strokes before it sends a drawing",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        return result


# --- training from the sidebar (tests/test_browser_queue.py, benchmarks/bench_queue.py) ------------------------

SIDEBAR = '[data-testid="stSidebar"]'


def press_train(page, name: str, epochs: int) -> None:
    """Fill the sidebar's form (name, epochs; the rest as the preset left it) and press Train."""
    page.get_by_label("Name of the new model", exact=True).fill(name)
    page.get_by_label("Epochs", exact=True).fill(str(epochs))
    page.locator(f"{SIDEBAR} button", has_text="Train").first.click()


def owner_in(url: str) -> str:
    """The owner id of the personal key in a page's link (``?me=KEY``): whose models and drawings it shows."""
    from mnist_core.identity import owner_of

    return owner_of(urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["me"][0])


def training_state(page, name: str) -> str:
    """What the sidebar says of this user's training ``name`` now: waiting, training, trained, refused, or ""."""
    sidebar = page.locator(SIDEBAR)
    if sidebar.get_by_text(f"Trained {name} in").count():
        return "trained"
    for state, text in (("training", f"Training {name}"), ("waiting", f"Waiting: {name}")):
        if sidebar.get_by_text(text, exact=True).count():  # the bold heading of the job, not a sentence naming it
            return state
    if sidebar.locator('[data-testid="stAlertContentWarning"], [data-testid="stAlertContentError"]').count():
        return "refused"
    return ""
