"""Queue trainings and run up to W of them at once, each in a child process, and watch them.

The page submits a :class:`Job` (a ``python -m mnist_core`` command that reports through
:mod:`mnist_core.protocol`: ``train``, or ``finetune``) to the server's :class:`TrainingRunner`:

* jobs wait in one first-in-first-out queue and run :attr:`TrainingRunner.workers` at a time
  (``$MNIST_TRAINING_WORKERS``, default half the cores, at least 1); a user has at most one job running
  and one waiting (:class:`QueueLimit` beyond that), and their waiting job is passed over, not blocking
  the queue, while their other one runs;
* each runs in its own process at a lower scheduling priority, so drawing stays fast in every session,
  and a crash or a kill of a training cannot take the server down; the store's atomic saves mean it cannot
  damage a working model either;
* Cancel takes a waiting job out of the queue; for a running one it is a SIGTERM, which the command line
  turns into a clean cancellation between two batches; a job still running :data:`STOP_GRACE_SECONDS` later
  (hung, or SIGSTOPped) is killed, and one that reports nothing for :data:`SILENCE_LIMIT_SECONDS` is killed
  too, so a hung child never holds a worker;
* a job whose process ends, however, is finished: none stays "running"; what a killed save left in the
  store is removed (or completed), and a new runner (a restarted server) cleans up after the last one.

How a job is started is the ``launcher``'s business (:data:`Launcher`): by default a local child process
(:func:`launch_locally`); another one (a Ray task) returns an object that behaves as an :class:`Execution`.
The queue lives in the server's memory: a restarted server starts with an empty one.
"""

from __future__ import annotations

import collections
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from mnist_core.card import ModelCard
from mnist_core.progress import TrainingProgress
from mnist_core.protocol import EXIT_CANCELLED, parse_line
from mnist_core.settings import TrainingSettings
from mnist_core.store import STALE_TEMP_SECONDS, ModelStore, check_name

NICENESS = 10  # the training's scheduling priority below the server's (the child lowers its own)
STOP_GRACE_SECONDS = 10  # Stop waits this long for the clean stop (a batch, at most a save) before a SIGKILL
# A training writes a progress line at least every epoch and every few seconds within one (batches of the
# largest network take ~5 s on 2 cores); loading its data, or measuring and saving it at the end, takes at
# most minutes. Silent for this long (any line on stdout or stderr counts), it is taken for hung and killed.
SILENCE_LIMIT_SECONDS = 10 * 60
WORKERS_VARIABLE = "MNIST_TRAINING_WORKERS"
KEPT_OUTCOMES = 1000  # users whose last finished job is remembered (each user sees their own)
KEPT_DURATIONS = 20  # finished jobs of one kind whose durations the wait estimates use


def default_workers() -> int:
    """``$MNIST_TRAINING_WORKERS``, else half the machine's cores (at least 1): each training uses all cores
    it gets, so more at once only share them, while the server keeps some for drawing."""
    value = os.environ.get(WORKERS_VARIABLE, "").strip()
    if not value:
        return max(1, (os.cpu_count() or 1) // 2)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{WORKERS_VARIABLE}={value!r}: give the number of trainings to run at once, 1 or more")
    return int(value)


class QueueLimit(RuntimeError):
    """This user already has a job waiting (one running and one waiting each)."""


@dataclass(frozen=True)
class Job:
    """What to run for whom: a ``python -m mnist_core`` command reporting through :mod:`mnist_core.protocol`.

    ``argv`` follows ``python -m mnist_core --models-dir DIR``, the command first (``train``, ``finetune``)
    and its ``--progress-jsonl`` included. What it reads (``data``, ``base_model``) is kept, neither deleted
    nor pruned, while it is queued or running; ``temporaries`` are files of its own, removed when it ends.
    """

    kind: str  # the command: "train", "finetune"
    label: str  # what it does, in words, for the page ("simple, 4 epochs, batch 64")
    argv: tuple[str, ...]
    name: str  # the model it saves
    owner: str  # who asked (mnist_core.identity's owner id; "" for none)
    data: str = ""  # the data file it reads ("" for the configured MNIST)
    base_model: str = ""  # the saved model it starts from, if any
    settings: TrainingSettings | None = None
    temporaries: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        """Jobs with the same key take about as long: the wait estimates learn from them."""
        return self.kind, self.settings.to_json() if self.settings else self.base_model or self.label, self.data


def training_job(settings: TrainingSettings, name: str, data: str | os.PathLike | None, owner: str = "",
                 watch: np.ndarray | None = None) -> Job:
    """A ``train`` job: ``settings`` on ``data`` (a path, or None for the configured MNIST), saved as ``name``.

    ``watch``: a 28x28 uint8 drawing the training reads at every epoch's end (its probabilities arrive with
    the epoch's report, :class:`~mnist_core.progress.Watched`). ValueError for bad settings or name.
    """
    settings.check()
    check_name(name)
    argv = ["train", "--settings-json", settings.to_json(), "--name", name, "--progress-jsonl",
            "--niceness", str(NICENESS)]
    if owner:
        argv += ["--owner", owner]
    if data is not None:
        argv += ["--data", str(data)]
    temporaries = ()
    if watch is not None:
        watch_file = _watch_file(watch)
        argv += ["--watch-image", watch_file]
        temporaries = (watch_file,)
    s = settings
    label = (f"{s.architecture}{f' x{s.members}' if s.members > 1 else ''}, {s.epochs} epoch{'s' * (s.epochs > 1)}, "
             f"batch {s.batch_size}{', augmented' if s.augment else ''}")
    return Job("train", label, tuple(argv), name, owner, data=str(data) if data is not None else "",
               base_model=s.base_model, settings=settings, temporaries=temporaries)


def finetune_job(base: str, drawings: str | os.PathLike, name: str, owner: str, count: int) -> Job:
    """A ``finetune`` job: saved model ``base`` adapted to ``owner``'s ``count`` drawings in the class folder
    ``drawings`` (:meth:`DrawingStore.images_dir <mnist_core.drawings.DrawingStore.images_dir>`), saved as ``name``.

    The folder is read when the job starts, as it is then. ValueError for a bad name.
    """
    check_name(base)
    check_name(name)
    argv = ["finetune", "--model", base, "--drawings", str(drawings), "--name", name, "--progress-jsonl",
            "--niceness", str(NICENESS)]
    if owner:
        argv += ["--owner", owner]
    label = f"fine-tune of {base} on your {count} drawing{'s' * (count != 1)}"
    return Job("finetune", label, tuple(argv), name, owner, base_model=base)


def adapted_name(base: str, owner: str) -> str:
    """The name of ``owner``'s model adapted from ``base``: ``BASE-yours-XXXXXX`` (a piece of the owner id), so
    that adapting again replaces their own earlier adaptation of that base, never anyone else's model."""
    suffix = "-yours" + (f"-{owner[:6]}" if owner else "")
    return check_name(base[:64 - len(suffix)] + suffix)


def default_name(settings: TrainingSettings, owner: str) -> str:
    """A model name for ``settings`` that is this owner's alone: ``ARCH-EPOCHSe-XXXXXX`` (a piece of the owner id,
    which is no personal data), so that two users with the same settings never aim at one name."""
    return check_name(f"{settings.architecture}-{settings.epochs}e" + (f"-{owner[:6]}" if owner else ""))


# --- how a job is started ---------------------------------------------------------------------


class Execution(Protocol):
    """A started job, as the runner watches it: ``subprocess.Popen`` is one; a Ray task needs an adapter.

    ``stdout`` yields the command's :mod:`mnist_core.protocol` lines and ``stderr`` its log lines, each until
    the job ends (both are read at once, by two threads); ``terminate()`` asks for a clean stop (the job then
    ends with :data:`~mnist_core.protocol.EXIT_CANCELLED`, or ``-SIGTERM`` if stopped before it could set that
    up); ``kill()`` ends it now; ``poll()`` is its exit status or None while it runs; ``wait()`` blocks for it.
    The saved model must be in the runner's store when the ``saved`` line arrives.
    """

    stdout: Iterable[str]
    stderr: Iterable[str]

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


Launcher = Callable[[Job, ModelStore], Execution]


def launch_locally(job: Job, store: ModelStore) -> subprocess.Popen:
    """The default :data:`Launcher`: ``python -m mnist_core --models-dir DIR ARGV...`` as a child process."""
    command = [sys.executable, "-m", "mnist_core", "--models-dir", str(store.directory), *job.argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# --- what the page sees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job: waiting (its place and an estimated wait), running (its progress), or how it ended."""

    id: str
    job: Job
    state: str = "queued"  # queued, starting, running, done, failed, cancelled
    position: int = 0  # while queued: 1 for the next to start
    wait_seconds: float | None = None  # while queued: the estimated wait until it starts (None: no estimate yet)
    progress: TrainingProgress | None = None
    epochs: tuple[TrainingProgress, ...] = ()  # every epoch-end report so far
    card: ModelCard | None = None
    error: str = ""
    submitted: float = 0.0
    started: float = 0.0
    finished: float = 0.0

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def owner(self) -> str:
        return self.job.owner

    @property
    def settings(self) -> TrainingSettings | None:
        return self.job.settings

    @property
    def queued(self) -> bool:
        return self.state == "queued"

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running")

    @property
    def active(self) -> bool:
        return self.queued or self.running


@dataclass
class _Entry:
    status: JobStatus
    execution: Execution | None = None
    log: list[str] = field(default_factory=list)
    stop_requested: bool = False
    last_heard: float = field(default_factory=time.monotonic)  # when it last wrote a line
    killed_because: str = ""  # why the runner killed it, if it did


class TrainingRunner:
    """The server's training queue: submits, runs up to ``workers`` jobs at once, cancels, reports."""

    def __init__(self, store: ModelStore | None = None, workers: int | None = None, launcher: Launcher | None = None):
        self.store = store if store is not None else ModelStore()
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise ValueError(f"a runner needs at least one worker, got {self.workers}")
        self.launch = launcher if launcher is not None else launch_locally
        self.stop_grace = STOP_GRACE_SECONDS
        self.silence_limit = SILENCE_LIMIT_SECONDS
        self._lock = threading.Lock()  # guards the four below; statuses are immutable and replaced under it
        self._queue: list[_Entry] = []
        self._running: dict[str, _Entry] = {}
        self._outcomes: collections.OrderedDict[str, JobStatus] = collections.OrderedDict()  # owner -> last ended
        self._durations: dict[tuple, collections.deque] = {}  # Job.key -> seconds of its last runs
        # A server killed while its trainings saved left their temporary files: their writers are gone now.
        self.store.remove_stale_temporaries(older_than=STALE_TEMP_SECONDS)

    # --- asking -----------------------------------------------------------------------------------

    def submit(self, job: Job) -> JobStatus:
        """Queue ``job`` (it starts at once if a worker is free); returns its status.

        Raises :class:`QueueLimit` if its owner already has a job waiting, ModelOwnedError
        (:mod:`mnist_core.store`) if the name is another owner's model, ValueError if another user's job in
        the queue will save a model of that name.
        """
        check_name(job.name)
        self.store.check_replaceable(job.name, job.owner)  # and the store checks again when it saves
        with self._lock:
            active = [*self._running.values(), *self._queue]
            if any(e.status.name == job.name and e.status.owner != job.owner for e in active):
                raise ValueError(f"another user's training in the queue will save a model named {job.name!r}; "
                                 "choose another name")
            waiting = next((e.status for e in self._queue if e.status.owner == job.owner), None)
            if waiting is not None:
                raise QueueLimit(f"you already have a training waiting: {waiting.name!r} ({waiting.job.label}); "
                                 "each user may have one training running and one waiting: cancel it, or wait "
                                 "until it starts")
            entry = _Entry(JobStatus(uuid.uuid4().hex, job, submitted=time.time()))
            self._queue.append(entry)
        self._dispatch()
        return self.status(entry.status.id)

    def cancel(self, job_id: str, owner: str | None = None) -> bool:
        """Take a waiting job out of the queue, or ask a running one to stop after its current batch.

        False if it is not active, or ``owner`` is given and is not the job's (only its owner may cancel it).
        """
        with self._lock:
            entry = next((e for e in [*self._queue, *self._running.values()] if e.status.id == job_id), None)
            if entry is None or (owner is not None and entry.status.owner != owner):
                return False
            if entry in self._queue:
                self._queue.remove(entry)
                self._finish_locked(entry, state="cancelled", error="cancelled before it started")
                queued = True
            else:
                entry.stop_requested, queued = True, False
        if queued:
            _remove_files(entry.status.job.temporaries)
        elif entry.execution is not None:  # else it is being launched, and is stopped as soon as it is
            self._terminate(entry)
        return True

    # --- looking --------------------------------------------------------------------------------

    def status(self, job_id: str) -> JobStatus | None:
        """Job ``job_id``'s status while it is active, or once ended as long as it is its owner's last."""
        for status in self.jobs():
            if status.id == job_id:
                return status
        with self._lock:
            return next((s for s in self._outcomes.values() if s.id == job_id), None)

    def jobs(self) -> list[JobStatus]:
        """Every active job: the running ones (oldest first), then the queue in order, each with its place and
        estimated wait."""
        with self._lock:
            estimates = self._estimates_locked()
            running = sorted((e.status for e in self._running.values()), key=lambda s: s.started or s.submitted)
            queued = [replace(e.status, position=i + 1, wait_seconds=estimates.get(e.status.id))
                      for i, e in enumerate(self._queue)]
        return [*running, *queued]

    def jobs_of(self, owner: str) -> list[JobStatus]:
        """``owner``'s active jobs (running first), then their last ended one if it ended after them."""
        mine = [s for s in self.jobs() if s.owner == owner]
        with self._lock:
            last = self._outcomes.get(owner)
        return [*mine, last] if last is not None else mine

    def in_use(self) -> tuple[set[str], set[str]]:
        """The data files and the saved models that active jobs read: neither may be deleted meanwhile."""
        active = self.jobs()
        return {s.job.data for s in active if s.job.data}, {s.job.base_model for s in active if s.job.base_model}

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus | None:
        """Block until job ``job_id`` ends (or ``timeout`` seconds pass); return its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.status(job_id)) is not None and status.active:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return status

    def wait_all(self, timeout: float | None = None) -> bool:
        """Block until no job is active (or ``timeout`` seconds pass); True if none is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.jobs():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    # --- internals ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start waiting jobs while workers are free: the first whose owner has none running, in queue order."""
        started = []
        with self._lock:
            while len(self._running) < self.workers:
                busy = {e.status.owner for e in self._running.values()}
                entry = next((e for e in self._queue if e.status.owner not in busy), None)
                if entry is None:
                    break
                self._queue.remove(entry)
                entry.status = replace(entry.status, state="starting", started=time.time())
                self._running[entry.status.id] = entry
                started.append(entry)
        for entry in started:  # launched outside the lock: a launcher may take its time (a remote cluster)
            threading.Thread(target=self._run, args=(entry,), daemon=True, name=f"job-{entry.status.name}").start()

    def _run(self, entry: _Entry) -> None:
        try:
            execution = self.launch(entry.status.job, self.store)
        except Exception as exc:  # noqa: BLE001 - whatever a launcher raises, the job failed and says why
            self._end(entry, dict(state="failed", error=f"the training could not be started: {exc}"))
            return
        with self._lock:
            entry.execution = execution
            stop_now = entry.stop_requested  # cancelled while it was being launched
        if stop_now:
            self._terminate(entry)
        stderr = threading.Thread(target=self._collect_stderr, args=(entry,), daemon=True)
        stderr.start()
        threading.Thread(target=self._kill_when_silent, args=(entry,), daemon=True).start()
        card = None
        for line in execution.stdout:
            entry.last_heard = time.monotonic()
            event = parse_line(line)
            if event is None:
                continue
            if event.kind == "progress":
                progress = event.progress
                with self._lock:
                    s = entry.status
                    entry.status = replace(s, state="running", progress=progress,
                                           epochs=s.epochs + ((progress,) if progress.epoch_end else ()))
            elif event.kind == "saved":
                card = event.card
        code = execution.wait()
        stderr.join()  # it ends at the stream's end: the log then holds the last error
        self._end(entry, self._outcome(entry, code, card))

    def _outcome(self, entry: _Entry, code: int, card: ModelCard | None) -> dict:
        """How a job that exited with ``code`` ended; cleans up what a killed save left."""
        if code == 0 and card is not None:
            return dict(state="done", card=card)
        if code == EXIT_CANCELLED or (entry.stop_requested and code == -signal.SIGTERM):
            # -SIGTERM: stopped before the command line had set up its clean stop (while importing or loading data)
            return dict(state="cancelled", error="stopped on request; the previous models are unchanged")
        # A process killed while saving leaves its temporary files (the store never lists them), or, killed
        # before its last rename, the new model with its card not yet in place: clean up or complete. Its
        # writer is gone, so they go now; another process' saves of that name are left alone.
        self.store.remove_stale_temporaries(entry.status.name, older_than=STALE_TEMP_SECONDS)
        if entry.stop_requested and entry.killed_because:
            return dict(state="cancelled", error=f"stopped on request: {entry.killed_because}, so it was killed; "
                                                 "the previous models are unchanged")
        if entry.killed_because:
            return dict(state="failed", error=f"{entry.killed_because}, so it was killed; the previous models are "
                                              "unchanged")
        return dict(state="failed", error=_last_error(entry.log) or f"training exited with status {code}")

    def _end(self, entry: _Entry, final: dict) -> None:
        _remove_files(entry.status.job.temporaries)
        with self._lock:
            self._running.pop(entry.status.id, None)
            self._finish_locked(entry, **final)
        self._dispatch()

    def _finish_locked(self, entry: _Entry, **final) -> None:
        entry.status = replace(entry.status, finished=time.time(), **final)
        status = entry.status
        if status.state == "done" and status.started:
            self._durations.setdefault(status.job.key, collections.deque(maxlen=KEPT_DURATIONS)).append(
                status.finished - status.started)
        self._outcomes.pop(status.owner, None)
        self._outcomes[status.owner] = status
        while len(self._outcomes) > KEPT_OUTCOMES:
            self._outcomes.popitem(last=False)

    def _estimates_locked(self) -> dict[str, float | None]:
        """Each waiting job's estimated wait in seconds: the queue played forward on the workers, by its own rule.

        A job's duration is the median of the last runs of jobs like it (:attr:`Job.key`), or, before any has
        finished, one running now projected from its progress (elapsed / fraction done); a running job's time
        left is the larger of (that duration - elapsed) and its own estimate (its progress' ``seconds_left``).
        None for a job behind one whose duration is not known yet.
        """
        now = time.time()
        free = {}  # owner -> seconds from now until their running job ends
        workers = []  # seconds from now until each worker is free
        for e in self._running.values():
            s, left = e.status, None
            typical = self._duration_locked(s.job)
            if typical is not None:
                left = max(0.0, typical - (now - s.started))
            if s.progress is not None:
                left = max(left or 0.0, s.progress.seconds_left)
            workers.append(left)
            free[s.owner] = left
        workers += [0.0] * (self.workers - len(workers))
        estimates, waiting = {}, list(self._queue)
        while waiting:
            if any(t is None for t in workers):
                return {**estimates, **{e.status.id: None for e in waiting}}
            workers.sort()
            start = workers[0]
            entry = next((e for e in waiting if (free.get(e.status.owner) or 0.0) <= start), None)
            if entry is None:  # every waiting job's owner has one running: the first of those to end goes next
                owners = [free.get(e.status.owner) for e in waiting]
                if any(t is None for t in owners):
                    return {**estimates, **{e.status.id: None for e in waiting}}
                workers[0] = min(owners)
                continue
            waiting.remove(entry)
            estimates[entry.status.id] = start
            duration = self._duration_locked(entry.status.job)
            workers[0] = free[entry.status.owner] = None if duration is None else start + duration
        return estimates

    def _duration_locked(self, job: Job) -> float | None:
        past = self._durations.get(job.key)
        if past:
            return statistics.median(past)
        now = time.time()
        for e in self._running.values():  # the same kind of job, running now: its pace so far
            p = e.status.progress
            if e.status.job.key == job.key and p is not None and p.fraction_done > 0.05:
                return (now - e.status.started) / p.fraction_done
        return None

    def _terminate(self, entry: _Entry) -> None:
        execution = entry.execution
        if execution.poll() is not None:
            return
        execution.terminate()  # a stopped (SIGSTOP) process gets it only when continued
        grace = self.stop_grace
        timer = threading.Timer(grace, self._kill, args=(entry, f"it had not stopped {_duration(grace)} after Stop"))
        timer.daemon = True
        timer.start()

    def _kill(self, entry: _Entry, why: str) -> None:
        if entry.execution.poll() is None:
            entry.killed_because = why
            entry.execution.kill()  # SIGKILL ends a stopped process too

    def _kill_when_silent(self, entry: _Entry) -> None:
        while entry.execution.poll() is None:
            time.sleep(min(5.0, self.silence_limit / 4))
            if time.monotonic() - entry.last_heard > self.silence_limit:
                self._kill(entry, f"it had reported nothing for {_duration(self.silence_limit)} (hung)")

    def _collect_stderr(self, entry: _Entry) -> None:
        for line in entry.execution.stderr:
            entry.last_heard = time.monotonic()
            entry.log.append(line.rstrip("\n"))
            del entry.log[:-50]


def _watch_file(image: np.ndarray) -> str:
    """``image`` written to a temporary PNG for the child's ``--watch-image``."""
    descriptor, path = tempfile.mkstemp(prefix="mnist-watch-", suffix=".png")
    with os.fdopen(descriptor, "wb") as file:
        Image.fromarray(np.asarray(image, np.uint8)).save(file, format="PNG")
    return path


def _remove_files(paths: Iterable[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _last_error(log: list[str]) -> str:
    errors = [line for line in log if line.startswith("error: ")]
    return errors[-1][len("error: "):] if errors else ""
