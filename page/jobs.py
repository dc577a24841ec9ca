"""Run one training at a time in a child process and watch it.

The page starts training through :class:`TrainingRunner`. The training runs as
``python -m mnist_core train --progress-jsonl`` in its own process, at a lower
scheduling priority, so that:

* drawing and predicting in every browser session stays fast while it trains;
* a crash or a kill of the training cannot take the server down, and the
  store's atomic save means it cannot damage a working model either;
* Stop is a SIGTERM, which the command line turns into a clean cancellation
  between two batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace

from mnist_core.card import ModelCard
from mnist_core.protocol import EXIT_CANCELLED, parse_line
from mnist_core.settings import TrainingSettings
from mnist_core.store import ModelStore, check_name
from mnist_core.training import TrainingProgress

NICENESS = 10  # the training's scheduling priority below the server's (the child lowers its own)


class TrainingBusy(RuntimeError):
    """A training is already running on this server."""


@dataclass(frozen=True)
class TrainingStatus:
    """A snapshot of the runner: what is running or what last ran, and how it went."""

    state: str = "idle"  # idle, starting, running, done, failed, cancelled
    name: str = ""
    settings: TrainingSettings | None = None
    owner: str = ""  # who started it (a session id), so the page can tell "yours" from "another user's"
    progress: TrainingProgress | None = None
    epochs: tuple[TrainingProgress, ...] = ()  # every epoch-end report so far
    card: ModelCard | None = None
    error: str = ""
    started: float = 0.0
    finished: float = 0.0

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running")


@dataclass
class _Job:
    process: subprocess.Popen
    status: TrainingStatus
    log: list[str] = field(default_factory=list)
    stop_requested: bool = False
    stderr_reader: threading.Thread | None = None


class TrainingRunner:
    """Starts, watches and stops the one training run this server allows at a time."""

    def __init__(self, store: ModelStore | None = None):
        self.store = store if store is not None else ModelStore()
        self._lock = threading.Lock()
        self._job: _Job | None = None
        self._last = TrainingStatus()

    def status(self) -> TrainingStatus:
        with self._lock:
            return self._job.status if self._job is not None else self._last

    def start(self, settings: TrainingSettings, name: str, data: str | os.PathLike | None, owner: str = "") -> None:
        """Start training ``settings`` on ``data`` (a path, or None for the configured MNIST) as model ``name``.

        Raises :class:`TrainingBusy` if a run is in progress, ValueError for bad settings or name.
        """
        settings.check()
        check_name(name)
        command = [sys.executable, "-m", "mnist_core", "--models-dir", str(self.store.directory), "train",
                   "--settings-json", settings.to_json(), "--name", name, "--progress-jsonl",
                   "--niceness", str(NICENESS)]
        if data is not None:
            command += ["--data", str(data)]
        with self._lock:
            if self._job is not None:
                raise TrainingBusy(_busy_message(self._job.status))
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            status = TrainingStatus(state="starting", name=name, settings=settings, owner=owner, started=time.time())
            self._job = _Job(process, status)
        job = self._job
        job.stderr_reader = threading.Thread(target=self._collect_stderr, args=(job,), daemon=True)
        job.stderr_reader.start()
        threading.Thread(target=self._watch, args=(job,), daemon=True, name=f"watch-{name}").start()

    def stop(self) -> bool:
        """Ask the running training to stop after its current batch; False if none is running."""
        with self._lock:
            job = self._job
        if job is None or job.process.poll() is not None:
            return False
        job.stop_requested = True
        job.process.send_signal(signal.SIGTERM)
        return True

    def wait(self, timeout: float | None = None) -> TrainingStatus:
        """Block until the current run ends (or ``timeout`` seconds pass); return the status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status().running:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return self.status()

    # --- internals ------------------------------------------------------

    def _update(self, job: _Job, **changes) -> None:
        with self._lock:
            job.status = replace(job.status, **changes)

    def _watch(self, job: _Job) -> None:
        card = None
        for line in job.process.stdout:
            event = parse_line(line)
            if event is None:
                continue
            if event.kind == "progress":
                progress = event.progress
                epochs = job.status.epochs + ((progress,) if progress.epoch_end else ())
                self._update(job, state="running", progress=progress, epochs=epochs)
            elif event.kind == "saved":
                card = event.card
        code = job.process.wait()
        job.stderr_reader.join()  # it ends at the stream's end: the log then holds the last error
        if code == 0 and card is not None:
            final = dict(state="done", card=card)
        elif code == EXIT_CANCELLED or (job.stop_requested and code == -signal.SIGTERM):
            # -SIGTERM: stopped before the command line had set up its clean stop (while importing or loading data)
            final = dict(state="cancelled", error="stopped on request; the previous models are unchanged")
        else:
            final = dict(state="failed", error=_last_error(job.log) or f"training exited with status {code}")
            # A process killed while saving leaves its temporary files (the store never lists them), or,
            # killed before its last rename, the new model with its card not yet in place: clean up or complete.
            self.store.remove_stale_temporaries(job.status.name)
        with self._lock:
            job.status = replace(job.status, finished=time.time(), **final)
            self._last = job.status
            self._job = None

    def _collect_stderr(self, job: _Job) -> None:
        for line in job.process.stderr:
            job.log.append(line.rstrip("\n"))
            del job.log[:-50]


def _last_error(log: list[str]) -> str:
    errors = [line for line in log if line.startswith("error: ")]
    return errors[-1][len("error: "):] if errors else ""


def _busy_message(status: TrainingStatus) -> str:
    s = status.settings
    what = f"{s.architecture}, {s.epochs} epochs" if s else "a model"
    done = f", {100 * status.progress.fraction_done:.0f}% done" if status.progress else ""
    return f"a training is already running on this server: {status.name!r} ({what}{done}); wait for it or stop it"

