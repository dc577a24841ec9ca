"""Several users at once: drawing sessions that draw without pause while another session trains.

Each drawing user is a thread with its own Chromium (Playwright's sync API is one per
thread), drawing real pen digits for a fixed time, clearing between them; bounded by the
clock and by a maximum number of digits, against a server on 127.0.0.1 only. Shared by
``tests/test_load.py`` (short) and ``benchmarks/bench_concurrency.py`` (longer, reported).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from dataclasses import dataclass, field

import app_driver as driver
import numpy as np
from playwright.sync_api import expect, sync_playwright

from mnist_core.handwriting import PenDigit

SIDEBAR = '[data-testid="stSidebar"]'
MAX_DIGITS_PER_USER = 500


@dataclass
class UserRun:
    """What one drawing user saw: latencies (ms), answers (label, shown) and every error."""

    latencies: list[float] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    alive_at_end: bool = False


def draw_for(url: str, digits: list[PenDigit], seconds: float, run: UserRun, start: threading.Barrier) -> None:
    """One user: open the page, wait for the others, then draw digit after digit for ``seconds``."""
    try:
        with sync_playwright() as p:
            browser = driver.launch(p)
            page = driver.open_page(browser, url)
            page.on("pageerror", lambda exc: run.errors.append(f"page error: {exc}"))
            start.wait()
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline and i < MAX_DIGITS_PER_USER:
                digit = digits[i % len(digits)]
                driver.draw_digit(page, digit)
                text, ms = driver.read_prediction(page)
                run.latencies.append(ms)
                run.answers.append((digit.label, text))
                driver.clear(page)
                i += 1
            shown = page.get_by_test_id("stException")
            if shown.count():
                run.errors.append(f"the page shows an exception: {shown.first.inner_text()}")
            # Still connected and working: one more digit gets a prediction.
            driver.draw_digit(page, digits[0])
            run.alive_at_end = driver.read_prediction(page)[0].isdigit()
            browser.close()
    except Exception as exc:  # a broken session is the finding, not a crash of the harness
        run.errors.append(f"{type(exc).__name__}: {exc}")


def run_users(url: str, digits: list[PenDigit], users: int, seconds: float, while_waiting=None) -> list[UserRun]:
    """``users`` drawing users at once for ``seconds``; ``while_waiting()`` runs once they have all started."""
    runs = [UserRun() for _ in range(users)]
    start = threading.Barrier(users + 1)
    threads = [threading.Thread(target=draw_for, args=(url, digits[i::users], seconds, runs[i], start))
               for i in range(users)]
    for t in threads:
        t.start()
    start.wait(timeout=300)
    if while_waiting is not None:
        while_waiting()
    for t in threads:
        t.join(timeout=seconds + 300)
    return runs


def summary(runs: list[UserRun]) -> dict:
    latencies = [ms for r in runs for ms in r.latencies]
    answers = [a for r in runs for a in r.answers]
    return {
        "users": len(runs),
        "predictions": len(latencies),
        "median_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        "correct": f"{sum(str(label) == shown for label, shown in answers)}/{len(answers)}",
        "errors": [e for r in runs for e in r.errors],
        "sessions_alive_at_end": sum(r.alive_at_end for r in runs),
    }


class Trainer:
    """A user who starts a long training from the sidebar and stops it at the end."""

    def __init__(self, url: str, name: str = "load-test", epochs: int = 200):
        self.url, self.name, self.epochs = url, name, epochs
        self._playwright = sync_playwright().start()
        self._browser = driver.launch(self._playwright)
        self.page = driver.open_page(self._browser, url)

    def progress(self):
        """The sidebar's progress line of the training (Look inside shows one too, while it runs)."""
        return self.page.locator(SIDEBAR).get_by_text(re.compile(rf"Epoch \d+/{self.epochs} · batch"))

    def start(self) -> None:
        page = self.page
        page.get_by_label("Name of the new model", exact=True).fill(self.name)
        page.get_by_label("Epochs", exact=True).fill(str(self.epochs))
        page.locator(f"{SIDEBAR} button", has_text="Train").first.click()
        expect(self.progress()).to_be_visible(timeout=120_000)

    def still_training(self) -> bool:
        return self.progress().count() > 0

    def stop(self) -> None:
        self.page.locator(f"{SIDEBAR} button", has_text="Stop").first.click()
        expect(self.progress()).to_have_count(0, timeout=120_000)

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()
