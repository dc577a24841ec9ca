"""Run the queue's trainings on a Ray cluster: a :data:`~page.jobs.Launcher` for :class:`~page.jobs.TrainingRunner`.

With ``$MNIST_RAY_ADDRESS`` set (``auto``, ``ray://HOST:10001``, ``HOST:6379``), :func:`launcher_from_environment`
gives a :class:`RayLauncher`, and each job of the same queue runs on the cluster instead of as a local child:

* one Ray actor per job (``num_cpus=1``) runs the job's own ``python -m mnist_core ... --progress-jsonl``
  command as its child process, with ``--models-dir`` a private temporary folder on the worker (holding the
  job's base model, shipped as bytes, if it has one);
* the actor keeps the child's stdout and stderr lines; the server's :class:`RayExecution` fetches them, one
  call at a time, each returning as soon as lines arrive (after a second if none did), and hands them to
  the runner as ``subprocess.Popen``'s streams would;
* when the child has saved, the actor returns the model's files (``NAME.keras``, ``NAME.json``,
  ``NAME.tflite``) as bytes and the server writes them into its own store with
  :meth:`ModelStore.save_files <mnist_core.store.ModelStore.save_files>` (atomic, under the store's lock,
  with the owner check) before it passes the ``saved`` line on: no shared models folder is needed;
* Stop sends the child SIGTERM through the actor (the same clean stop, :data:`~mnist_core.protocol.EXIT_CANCELLED`);
  a kill is ``ray.kill`` of the actor, and the child goes with it (Ray ends a dead worker's processes; on Linux
  the child also has a parent-death signal). A worker that dies, however it dies, ends its job as failed,
  saying so; nothing of it reaches the store.

Ray is imported only when a launcher first starts a job: without the variable nothing here imports it.
The actor's code is sent to the cluster by value, so the workers need ``mnist_core`` and its dependencies
installed, not this page.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from mnist_core.errors import first_line
from mnist_core.protocol import parse_line
from mnist_core.store import ModelStore, ModelStoreError, check_name
from page.jobs import Job

ADDRESS_VARIABLE = "MNIST_RAY_ADDRESS"
# The workers see the server's data where it sees it: the variables naming data, passed to each job's child
# (the models folder is the worker's own, and the rest of the server's environment is not the worker's business).
FORWARDED_VARIABLES = ("MNIST_DATA", "HANDWRITING_DATA", "MNIST_DRAWINGS_DIR", "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL")
START_TIMEOUT_SECONDS = 5 * 60  # a job waits this long for a free CPU on the cluster (and its worker to start)
CONNECT_SECONDS = 60  # how long the first job keeps trying to reach the cluster before it fails
READ_WAIT_SECONDS = 1.0  # a fetch of lines returns after this long when there are none
MODEL_SUFFIXES = (".keras", ".json", ".tflite")
FOLDER_PREFIX = "mnist-ray-"  # a job's private models folder on its worker: mnist-ray-WORKERPID-RANDOM in the temp dir


def launcher_from_environment() -> RayLauncher | None:
    """A :class:`RayLauncher` for ``$MNIST_RAY_ADDRESS``, or None when it is not set (then Ray is never imported)."""
    address = os.environ.get(ADDRESS_VARIABLE, "").strip()
    return RayLauncher(address) if address else None


class RayLauncher:
    """Starts each job as a Ray actor on the cluster at ``address`` (anything ``ray.init(address=...)`` takes).

    Connects on the first job, so a server starts even while the cluster is down: its jobs then fail, saying
    why, and the next one tries again.
    """

    def __init__(self, address: str, start_timeout: float = START_TIMEOUT_SECONDS, num_cpus: float = 1):
        if not address:
            raise ValueError(f"a Ray address is needed (as in {ADDRESS_VARIABLE}=auto or ray://HOST:10001), got ''")
        self.address, self.start_timeout, self.num_cpus = address, start_timeout, num_cpus
        self._lock = threading.Lock()
        self._actor_class = None

    def __call__(self, job: Job, store: ModelStore) -> RayExecution:
        ray, actor_class = self._connect()
        base = _model_files(store, job.base_model) if job.base_model else {}
        env = {name: os.environ[name] for name in FORWARDED_VARIABLES if name in os.environ}
        actor = actor_class.remote()
        try:
            started = actor.start.remote(list(job.argv), job.name, job.base_model, base, env)
            worker, child = ray.get(started, timeout=self.start_timeout)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor)
            raise RuntimeError(f"the Ray cluster at {self.address} had no free CPU for it within "
                               f"{self.start_timeout:g} s; let fewer trainings run at once (MNIST_TRAINING_WORKERS) "
                               "or add workers to the cluster") from None
        except ray.exceptions.RayError as exc:
            ray.kill(actor)
            raise RuntimeError(f"the Ray worker could not start it: {first_line(exc)}") from exc
        return RayExecution(ray, actor, job, store, worker, child)

    def _connect(self):
        """Ray, connected to the cluster, and the job actor's class (made once)."""
        with self._lock:
            try:
                import ray
            except ImportError:
                raise RuntimeError(f"{ADDRESS_VARIABLE}={self.address!r} asks for Ray, which is not installed: "
                                   "pip install -r requirements-ray.txt (or pip install '.[ray]'), or unset "
                                   f"{ADDRESS_VARIABLE} to train on this machine") from None
            deadline = time.monotonic() + CONNECT_SECONDS
            while not ray.is_initialized():
                try:
                    # The child's output comes back through the actor; the workers' own logs stay on the cluster.
                    ray.init(address=self.address, log_to_driver=False)
                except Exception as exc:  # noqa: BLE001 - ray.init raises many types; all mean "not reachable"
                    # A head that has just started (or is busy) refuses a client for a while ("Initialization
                    # failure from server", seen in CI): try again, then give up saying why.
                    with contextlib.suppress(Exception):
                        ray.shutdown()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"could not connect to the Ray cluster at {self.address} "
                                           f"({ADDRESS_VARIABLE}): {first_line(exc)}") from exc
                    time.sleep(2)
            if self._actor_class is None:
                # By value: the workers need not have this page's code, only mnist_core.
                ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
                # Threaded (max_concurrency), so that a stop or a fetch of lines is served while the job runs.
                self._actor_class = ray.remote(num_cpus=self.num_cpus, max_concurrency=4, max_restarts=0,
                                               max_task_retries=0)(TrainingActor)
            return ray, self._actor_class


class RayExecution:
    """A job running in a Ray actor, as the runner watches it (:class:`~page.jobs.Execution`)."""

    def __init__(self, ray, actor, job: Job, store: ModelStore, worker_pid: int, pid: int):
        self._ray, self._actor, self._job, self._store = ray, actor, job, store
        # On the worker's machine: the Ray worker process running the actor, and the training, its child.
        self.worker_pid, self.pid = worker_pid, pid
        self._out: queue.Queue[str | None] = queue.Queue()
        self._err: queue.Queue[str | None] = queue.Queue()
        self.stdout, self.stderr = _lines(self._out), _lines(self._err)
        self.returncode: int | None = None
        self._ended = threading.Event()
        self._killed = False
        threading.Thread(target=self._pump, daemon=True, name=f"ray-{job.name}").start()

    def terminate(self) -> None:
        if self.returncode is None:
            self._actor.terminate.remote()

    def kill(self) -> None:
        if self.returncode is None:
            self._killed = True
            self._ray.kill(self._actor, no_restart=True)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self) -> int:
        self._ended.wait()
        return self.returncode

    def _pump(self) -> None:
        """Pass the actor's lines on until the child has ended; then save the model, then its ``saved`` line."""
        ray, saved, code, error = self._ray, None, None, ""
        try:
            ended = False
            while not ended:
                lines, ended = ray.get(self._actor.read.remote(READ_WAIT_SECONDS))
                for stream, line in lines:
                    if stream == "stdout" and (event := parse_line(line)) is not None and event.kind == "saved":
                        saved = line  # held back until the model is in this store
                    else:
                        (self._out if stream == "stdout" else self._err).put(line)
            code, files = ray.get(self._actor.result.remote())
            if code == 0 and saved is not None:
                self._save(files)
        except ModelStoreError as exc:
            code, error = 1, str(exc)
        except ray.exceptions.RayActorError as exc:
            code = -signal.SIGKILL
            if not self._killed:  # else the runner says why it killed it
                error = (f"the Ray worker running the training died ({first_line(exc)}); nothing of it was saved, "
                         "the previous models are unchanged")
        except Exception as exc:  # noqa: BLE001 - whatever Ray raises, the job ended and says why
            code, error = 1, f"the training's Ray task failed: {first_line(exc)}"
        finally:
            if error:
                self._err.put(f"error: {error}")
            if code == 0 and saved is not None:
                self._out.put(saved)
            self._out.put(None)
            self._err.put(None)
            self.returncode = code if code is not None else 1
            self._ended.set()
            with contextlib.suppress(Exception):  # already gone
                ray.kill(self._actor, no_restart=True)  # it has done its work: free its CPU at once

    def _save(self, files: dict[str, bytes]) -> None:
        name = self._job.name
        missing = [suffix for suffix in (".keras", ".json") if suffix not in files]
        if missing:
            raise ModelStoreError(f"the Ray worker said it saved {name!r} but returned no {' or '.join(missing)} file")
        self._store.save_files(files[".keras"], files[".json"], files.get(".tflite"))


def _lines(source: queue.Queue) -> Iterator[str]:
    while (line := source.get()) is not None:
        yield line


def _model_files(store: ModelStore, name: str) -> dict[str, bytes]:
    """Model ``name``'s files in ``store``, by suffix, for a job on a worker that starts from it."""
    return {path.suffix: path.read_bytes() for path in store.files(check_name(name)) if path.is_file()}


# --- on the worker ----------------------------------------------------------------------------------


class TrainingActor:
    """On a Ray worker: one job's ``python -m mnist_core`` command in a private models folder, its output
    lines kept until the server fetches them. Made a Ray actor by :class:`RayLauncher`; plain Python here.
    """

    def __init__(self):
        self._changed = threading.Condition()
        self._lines: list[tuple[str, str]] = []  # (stream, line) not yet fetched
        self._open = 2  # the child's streams not yet at their end
        self._process: subprocess.Popen | None = None
        self._folder = self._name = ""

    def start(self, argv: list[str], name: str, base_name: str, base: dict[str, bytes],
              env: dict[str, str]) -> tuple[int, int]:
        """Start ``python -m mnist_core --models-dir PRIVATE ARGV...``, which saves model ``name``, with the
        files of model ``base_name`` (by suffix) in PRIVATE; returns this worker's and the child's process ids."""
        _remove_folders_of_dead_workers()
        self._folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
        self._name = check_name(name)
        for suffix, content in base.items():
            with open(os.path.join(self._folder, f"{check_name(base_name)}{suffix}"), "wb") as file:
                file.write(content)
        command = [sys.executable, "-m", "mnist_core", "--models-dir", self._folder, *argv]
        started: queue.Queue = queue.Queue()
        # The child is started, and waited for, by a thread of its own: the parent-death signal follows the
        # thread that started it, and this one lives exactly as long as the child.
        threading.Thread(target=self._run, args=(command, {**os.environ, **env}, os.getpid(), started),
                         daemon=True).start()
        outcome = started.get()
        if isinstance(outcome, BaseException):
            raise outcome
        return os.getpid(), outcome

    def read(self, wait: float) -> tuple[list[tuple[str, str]], bool]:
        """The lines since the last call (waiting up to ``wait`` seconds for one), and whether the child's
        output has ended with them."""
        with self._changed:
            self._changed.wait_for(lambda: self._lines or not self._open, timeout=wait)
            lines, self._lines = self._lines, []
            return lines, not self._open

    def result(self) -> tuple[int, dict[str, bytes]]:
        """The child's exit status and, if it saved (status 0), its model's files by suffix; removes the folder."""
        code = self._process.wait()
        files = {}
        if code == 0:
            for suffix in MODEL_SUFFIXES:
                path = os.path.join(self._folder, f"{self._name}{suffix}")
                if os.path.isfile(path):
                    with open(path, "rb") as file:
                        files[suffix] = file.read()
        shutil.rmtree(self._folder, ignore_errors=True)
        return code, files

    def terminate(self) -> None:
        """The clean stop: SIGTERM to the child, which ends with EXIT_CANCELLED between two batches."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def _run(self, command: list[str], env: dict[str, str], worker: int, started: queue.Queue) -> None:
        try:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                             env=env, preexec_fn=lambda: _die_with(worker))
        except OSError as exc:
            started.put(exc)
            return
        started.put(self._process.pid)
        readers = [threading.Thread(target=self._collect, args=(stream, source), daemon=True)
                   for stream, source in (("stdout", self._process.stdout), ("stderr", self._process.stderr))]
        for reader in readers:
            reader.start()
        self._process.wait()
        for reader in readers:
            reader.join()

    def _collect(self, stream: str, source) -> None:
        for line in source:
            with self._changed:
                self._lines.append((stream, line))
                self._changed.notify_all()
        with self._changed:
            self._open -= 1
            self._changed.notify_all()


def _remove_folders_of_dead_workers() -> None:
    """Remove the private folders that killed workers of this machine left (named by their process id)."""
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), f"{FOLDER_PREFIX}*-*")):
        pid = os.path.basename(folder)[len(FOLDER_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or no pid we can ask about
        return True
    return True


def _die_with(worker: int) -> None:
    """In the child, before it runs: be killed when ``worker``, its parent, dies (Linux; elsewhere a no-op),
    so that a killed worker never leaves a training running on its own."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != worker:  # the worker died before the signal was set up
        os._exit(1)
