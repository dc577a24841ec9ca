"""Run one training at a time in a child process and watch it.

The page starts training through :class:`TrainingRunner`. The training runs as
``python -m mnist_core train --progress-jsonl`` in its own process, at a lower
scheduling priority, so that:

* drawing and predicting in every browser session stays fast while it trains;
* a crash or a kill of the training cannot take the server down, and the
  store's atomic save means it cannot damage a working model either;
* Stop is a SIGTERM, which the command line turns into a clean cancellation
  between two batches; a training still running :data:`STOP_GRACE_SECONDS`
  later (hung, or SIGSTOPped) is killed, and one that reports nothing for
  :data:`SILENCE_LIMIT_SECONDS` is killed too, so a hung child never holds the
  server's one training slot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_core.card import ModelCard
from mnist_core.progress import TrainingProgress
from mnist_core.protocol import EXIT_CANCELLED, parse_line
from mnist_core.settings import TrainingSettings
from mnist_core.store import ModelStore, check_name

NICENESS = 10  # the training's scheduling priority below the server's (the child lowers its own)
STOP_GRACE_SECONDS = 10  # Stop waits this long for the clean stop (a batch, at most a save) before a SIGKILL
# A training writes a progress line at least every epoch and every few seconds within one (batches of the
# largest network take ~5 s on 2 cores); loading its data, or measuring and saving it at the end, takes at
# most minutes. Silent for this long (any line on stdout or stderr counts), it is taken for hung and killed.
SILENCE_LIMIT_SECONDS = 10 * 60


class TrainingBusy(RuntimeError):
    """A training is already running on this server."""


@dataclass(frozen=True)
class TrainingStatus:
    """A snapshot of the runner: what is running or what last ran, and how it went."""

    state: str = "idle"  # idle, starting, running, done, failed, cancelled
    name: str = ""
    settings: TrainingSettings | None = None
    owner: str = ""  # who started it (a session id), so the page can tell "yours" from "another user's"
    data: str = ""  # the data file it trains on ("" for the configured MNIST), which must not be deleted meanwhile
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
    watch_file: str | None = None  # the watched drawing, a temporary PNG removed when the run ends
    last_heard: float = field(default_factory=time.monotonic)  # when it last wrote a line
    killed_because: str = ""  # why the runner killed it, if it did


class TrainingRunner:
    """Starts, watches and stops the one training run this server allows at a time."""

    def __init__(self, store: ModelStore | None = None):
        self.store = store if store is not None else ModelStore()
        self._lock = threading.Lock()
        self._job: _Job | None = None
        self._last = TrainingStatus()
        self.stop_grace = STOP_GRACE_SECONDS
        self.silence_limit = SILENCE_LIMIT_SECONDS

    def status(self) -> TrainingStatus:
        with self._lock:
            return self._job.status if self._job is not None else self._last

    def start(self, settings: TrainingSettings, name: str, data: str | os.PathLike | None, owner: str = "",
              watch: np.ndarray | None = None) -> None:
        """Start training ``settings`` on ``data`` (a path, or None for the configured MNIST) as model ``name``.

        ``watch``: a 28x28 uint8 drawing the training reads at every epoch's end (its probabilities arrive
        with the epoch's report, :class:`~mnist_core.training.Watched`). Raises :class:`TrainingBusy` if a
        run is in progress, ValueError for bad settings or name.
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
                raise TrainingBusy(_busy_message(self._job.status, owner))
            watch_file = _watch_file(watch) if watch is not None else None
            if watch_file is not None:
                command += ["--watch-image", watch_file]
            try:
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            except OSError:
                if watch_file is not None:
                    Path(watch_file).unlink(missing_ok=True)
                raise
            status = TrainingStatus(state="starting", name=name, settings=settings, owner=owner, started=time.time(),
                                    data=str(data) if data is not None else "")
            self._job = _Job(process, status, watch_file=watch_file)
        job = self._job
        job.stderr_reader = threading.Thread(target=self._collect_stderr, args=(job,), daemon=True)
        job.stderr_reader.start()
        threading.Thread(target=self._watch, args=(job,), daemon=True, name=f"watch-{name}").start()
        threading.Thread(target=self._kill_when_silent, args=(job,), daemon=True, name=f"silence-{name}").start()

    def stop(self) -> bool:
        """Ask the running training to stop after its current batch; False if none is running."""
        with self._lock:
            job = self._job
        if job is None or job.process.poll() is not None:
            return False
        job.stop_requested = True
        job.process.send_signal(signal.SIGTERM)  # a stopped (SIGSTOP) process gets it only when continued
        grace = self.stop_grace
        timer = threading.Timer(grace, self._kill, args=(job, f"it had not stopped {_duration(grace)} after Stop"))
        timer.daemon = True
        timer.start()
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

    def _kill(self, job: _Job, why: str) -> None:
        if job.process.poll() is None:
            job.killed_because = why
            job.process.kill()  # SIGKILL ends a stopped process too

    def _kill_when_silent(self, job: _Job) -> None:
        while job.process.poll() is None:
            time.sleep(min(5.0, self.silence_limit / 4))
            if time.monotonic() - job.last_heard > self.silence_limit:
                self._kill(job, f"it had reported nothing for {_duration(self.silence_limit)} (hung)")

    def _watch(self, job: _Job) -> None:
        card = None
        for line in job.process.stdout:
            job.last_heard = time.monotonic()
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
        if job.watch_file is not None:
            Path(job.watch_file).unlink(missing_ok=True)
        job.stderr_reader.join()  # it ends at the stream's end: the log then holds the last error
        if code == 0 and card is not None:
            final = dict(state="done", card=card)
        elif code == EXIT_CANCELLED or (job.stop_requested and code == -signal.SIGTERM):
            # -SIGTERM: stopped before the command line had set up its clean stop (while importing or loading data)
            final = dict(state="cancelled", error="stopped on request; the previous models are unchanged")
        elif job.stop_requested and job.killed_because:
            final = dict(state="cancelled", error=f"stopped on request: {job.killed_because}, so it was killed; "
                                                  "the previous models are unchanged")
            self.store.remove_stale_temporaries(job.status.name)  # killed, perhaps while saving
        elif job.killed_because:
            final = dict(state="failed", error=f"{job.killed_because}, so it was killed; the previous models are "
                                               "unchanged")
            self.store.remove_stale_temporaries(job.status.name)
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
            job.last_heard = time.monotonic()
            job.log.append(line.rstrip("\n"))
            del job.log[:-50]


def _watch_file(image: np.ndarray) -> str:
    """``image`` written to a temporary PNG for the child's ``--watch-image``."""
    descriptor, path = tempfile.mkstemp(prefix="mnist-watch-", suffix=".png")
    with os.fdopen(descriptor, "wb") as file:
        Image.fromarray(np.asarray(image, np.uint8)).save(file, format="PNG")
    return path


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _last_error(log: list[str]) -> str:
    errors = [line for line in log if line.startswith("error: ")]
    return errors[-1][len("error: "):] if errors else ""


def _busy_message(status: TrainingStatus, asked_by: str = "") -> str:
    """Why a training cannot start now, and what the one who asked can do: only its owner can stop it."""
    s = status.settings
    what = f"{s.architecture}, {s.epochs} epochs" if s else "a model"
    done = f", {100 * status.progress.fraction_done:.0f}% done" if status.progress else ""
    running = f"a training is already running on this server: {status.name!r} ({what}{done})"
    if asked_by and asked_by == status.owner:
        return f"{running}; it is yours: stop it first, or wait for it to finish"
    return f"{running}; wait for it to finish (only the user who started it can stop it)"

