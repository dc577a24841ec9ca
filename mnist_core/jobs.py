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

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace

from mnist_core.cli import EXIT_CANCELLED
from mnist_core.settings import TrainingSettings
from mnist_core.store import ModelCard, ModelStore
from mnist_core.training import TrainingProgress

NICENESS = 10


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
        self.store.paths(name)  # validates the name
        command = [sys.executable, "-m", "mnist_core", "--models-dir", str(self.store.directory), "train",
                   *settings_arguments(settings), "--name", name, "--progress-jsonl"]
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
                preexec_fn=_lower_priority if os.name == "posix" else None,
            )
            status = TrainingStatus(state="starting", name=name, settings=settings, owner=owner, started=time.time())
            self._job = _Job(process, status)
        threading.Thread(target=self._watch, args=(self._job,), daemon=True, name=f"watch-{name}").start()
        threading.Thread(target=self._collect_stderr, args=(self._job,), daemon=True).start()

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
            event = _parse(line)
            if event is None:
                continue
            if event.get("event") == "progress":
                progress = TrainingProgress(**event["progress"])
                epochs = job.status.epochs + ((progress,) if progress.epoch_end else ())
                self._update(job, state="running", progress=progress, epochs=epochs)
            elif event.get("event") == "saved":
                card = ModelCard.from_dict(event["card"])
        code = job.process.wait()
        time.sleep(0.05)  # let the stderr reader take the last lines
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


def settings_arguments(settings: TrainingSettings) -> list[str]:
    """The ``train`` command-line arguments that reproduce ``settings``."""
    return [
        "--arch", settings.architecture,
        "--epochs", str(settings.epochs),
        "--batch-size", str(settings.batch_size),
        "--learning-rate", repr(settings.learning_rate),
        "--augment" if settings.augment else "--no-augment",
        "--validation-split", repr(settings.validation_split),
        "--seed", str(settings.seed),
        "--members", str(settings.members),
        "--schedule", settings.schedule,
    ]


def _lower_priority() -> None:
    os.nice(NICENESS)


def _parse(line: str) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _last_error(log: list[str]) -> str:
    errors = [line for line in log if line.startswith("error: ")]
    return errors[-1][len("error: "):] if errors else ""


def _busy_message(status: TrainingStatus) -> str:
    s = status.settings
    what = f"{s.architecture}, {s.epochs} epochs" if s else "a model"
    done = f", {100 * status.progress.fraction_done:.0f}% done" if status.progress else ""
    return f"a training is already running on this server: {status.name!r} ({what}{done}); wait for it or stop it"

