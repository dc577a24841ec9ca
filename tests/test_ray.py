"""The training queue on a real Ray cluster: a head started here, bound to 127.0.0.1, reached by its address.

Real trainings run as Ray actors through it (page.ray_launcher): progress arrives, the model comes back as bytes
into the server's store with its owner; a worker killed mid-way, a Stop, and a Stop the training ignores each end
their job cleanly, with nothing half-saved, and the queue goes on. Without ``MNIST_RAY_ADDRESS`` nothing imports Ray.
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mnist_core.settings import TrainingSettings
from mnist_core.store import LOCK_FILE, TEMP_PREFIX, ModelStore
from page.jobs import TrainingRunner, adapted_name, finetune_job, training_job

ROOT = Path(__file__).resolve().parent.parent
LONG = TrainingSettings("simple", epochs=200, batch_size=32)
SHORT = TrainingSettings("baseline", epochs=1, batch_size=64)
ALICE, BOB, CAROL = "a1" * 8, "b2" * 8, "c3" * 8  # owner ids, as mnist_core.identity.owner_of makes them
# Ray replaces a loopback --node-ip-address by the machine's address unless told it is a one-machine cluster
# (its own setting for macOS and Windows): that keeps the head, and every port it opens, on 127.0.0.1.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def test_without_an_address_nothing_imports_ray():
    env = {k: v for k, v in os.environ.items() if k != "MNIST_RAY_ADDRESS"}
    script = ("import sys; import page.jobs, page.resources, page.ray_launcher as r; "
              "assert r.launcher_from_environment() is None; print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """A real Ray head (``ray start --head --block``) with 2 CPUs on 127.0.0.1: its GCS and client addresses."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-ray.txt")
    gcs, client = _free_port(), _free_port()
    folder = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    log = open(os.path.join(folder, "head.log"), "w")  # noqa: SIM115 - closed at the end of the module
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
               f"--port={gcs}", f"--ray-client-server-port={client}", "--num-cpus=2", "--include-dashboard=false",
               "--disable-usage-stats", f"--temp-dir={folder}"]
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **LOOPBACK_ONLY},
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _listening(client):
            assert head.poll() is None, f"ray start exited with {head.returncode}: {Path(log.name).read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"the Ray head did not start: {Path(log.name).read_text()[-2000:]}"
            time.sleep(0.5)
        yield {"gcs": f"127.0.0.1:{gcs}", "client": f"ray://127.0.0.1:{client}"}
    finally:
        import ray

        ray.shutdown()
        head.terminate()  # ray start --block stops the head's processes on SIGTERM
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # its own session: the head's processes and nothing else
            head.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def launcher(ray_head):
    """The page's launcher for the head's client address (ray://), as MNIST_RAY_ADDRESS would give it."""
    from page.ray_launcher import RayLauncher

    return RayLauncher(ray_head["client"])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ModelStore:
    return ModelStore(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def trained(launcher, store, tiny_npz):
    """Alice's model 'fresh', trained on the cluster; the job's status and the progress seen while it ran."""
    runner = TrainingRunner(store, workers=1, launcher=launcher)
    job, seen, execution = submit(runner, SHORT, "fresh", tiny_npz, owner=ALICE), [], None
    while (status := runner.status(job)).active:
        if status.progress is not None:
            seen.append(status.progress)
            execution = runner._running[job].execution
        time.sleep(0.05)
    return status, seen, execution


def submit(runner, settings, name, data, owner=""):
    return runner.submit(training_job(settings, name, data, owner=owner)).id


def wait_for(condition, timeout=180.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def reporting(runner, job_id, batches=0):
    """Wait until job ``job_id`` runs and has reported more than ``batches`` batches; returns its execution."""
    wait_for(lambda: (s := runner.status(job_id)).progress is not None and s.progress.batch > batches)
    return runner._running[job_id].execution


def contents(store: ModelStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in store.directory.iterdir() if p.name != LOCK_FILE}


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for its reaper counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.cluster
@pytest.mark.slow
def test_trains_on_the_cluster_reports_progress_and_saves_with_its_owner(trained, store):
    from page.ray_launcher import RayExecution

    status, seen, execution = trained
    assert status.state == "done", status.error
    assert isinstance(execution, RayExecution) and execution.worker_pid != os.getpid()
    assert seen and 0 < seen[0].fraction_done < 1  # progress reached the page while it ran, not only at the end
    assert [p.epoch for p in status.epochs] == [1] and status.progress.fraction_done == 1.0
    entry = store.inspect("fresh")
    assert entry.ok and entry.card.test_error == status.card.test_error and store.owner("fresh") == ALICE
    # Trained in the worker's own folder and sent over as bytes: that folder is gone, this store has the model.
    argv = shlex.split(entry.card.command)
    folder = Path(argv[argv.index("--models-dir") + 1])
    assert folder.name.startswith(f"mnist-ray-{execution.worker_pid}-") and not folder.exists()
    assert sorted(contents(store)) == ["fresh.json", "fresh.keras", "fresh.tflite"]
    assert store.load_litert("fresh", entry.card) is not None  # its LiteRT copy came along, matching its card
    assert gone(execution.pid)


@pytest.mark.cluster
@pytest.mark.slow
def test_a_model_saved_elsewhere_is_saved_only_whole_and_only_over_its_owners(trained, store, tmp_path):
    from mnist_core.store import ModelOwnedError, ModelStoreError

    keras_file, card_file, litert_file = (path.read_bytes() for path in store.files("fresh"))
    other = ModelStore(tmp_path / "other")
    damaged = keras_file[:-1] + bytes([keras_file[-1] ^ 1])
    with pytest.raises(ModelStoreError, match="its .keras file does not match its card"):
        other.save_files(damaged, card_file, litert_file)
    with pytest.raises(ModelStoreError, match="its card is not valid"):
        other.save_files(keras_file, b"{", litert_file)
    assert not other.directory.exists() or contents(other) == {}
    bobs = json.loads(card_file) | {"owner": BOB}  # the same files, saved by Bob first
    other.save_files(keras_file, json.dumps(bobs).encode(), litert_file)
    with pytest.raises(ModelOwnedError):
        other.save_files(keras_file, card_file, litert_file)
    assert other.owner("fresh") == BOB and other.inspect("fresh").ok and sorted(contents(other)) == [
        "fresh.json", "fresh.keras", "fresh.tflite"]


@pytest.mark.cluster
@pytest.mark.slow
def test_a_finetune_job_gets_its_base_model_as_bytes(trained, launcher, store, keep_pen_drawings, tmp_path):
    from mnist_core.drawings import DrawingStore

    drawings = DrawingStore(tmp_path / "drawings")
    keep_pen_drawings(drawings, ALICE, 30, "fresh")  # real pen digits as canvas PNGs, kept as the page keeps them
    name = adapted_name("fresh", ALICE)
    runner = TrainingRunner(store, workers=1, launcher=launcher)
    status = runner.wait(runner.submit(finetune_job("fresh", drawings.images_dir(ALICE), name, ALICE, 30)).id, 300)
    assert status.state == "done", status.error
    card = store.inspect(name).card
    assert card.owner == ALICE and card.base_model.name == "fresh" and card.adaptation.count == 30
    assert card.base_model.keras_sha256 == store.inspect("fresh").card.keras_sha256  # the very base it was sent


@pytest.mark.cluster
@pytest.mark.slow
def test_a_worker_killed_mid_way_fails_its_job_cleanly_and_the_queue_goes_on(trained, launcher, store, tiny_npz):
    before = contents(store)
    runner = TrainingRunner(store, workers=1, launcher=launcher)
    job = submit(runner, LONG, "fresh", tiny_npz, owner=ALICE)  # would replace her model, had it finished
    waiting = submit(runner, SHORT, "after-kill", tiny_npz, owner=BOB)
    execution = reporting(runner, job, batches=2)
    os.kill(execution.worker_pid, signal.SIGKILL)  # the Ray worker process itself, as a crash or the OOM killer
    status = runner.wait(job, 120)
    assert status.state == "failed", status
    assert status.error.startswith("the Ray worker running the training died (")
    assert status.error.endswith("nothing of it was saved, the previous models are unchanged")
    wait_for(lambda: gone(execution.pid), 30)  # the training died with its worker
    assert runner.wait(waiting, 300).state == "done"
    # and the next job on that machine removed the private folder the dead worker left
    assert not list(Path(tempfile.gettempdir()).glob(f"mnist-ray-{execution.worker_pid}-*"))
    after = contents(store)
    assert {n: c for n, c in after.items() if not n.startswith("after-kill.")} == before  # nothing half-saved
    assert sorted(n for n in after if n.startswith("after-kill.")) == [f"after-kill{s}" for s in (".json", ".keras",
                                                                                                ".tflite")]
    assert store.owner("after-kill") == BOB and not any(n.startswith(TEMP_PREFIX) for n in after)


@pytest.mark.cluster
@pytest.mark.slow
def test_stop_on_the_cluster_cancels_cleanly_and_saves_nothing(launcher, store, tiny_npz):
    before = contents(store)
    runner = TrainingRunner(store, workers=1, launcher=launcher)
    job = submit(runner, LONG, "stopped", tiny_npz, owner=CAROL)
    execution = reporting(runner, job)
    assert runner.cancel(job, CAROL)
    status = runner.wait(job, 120)
    assert status.state == "cancelled" and status.error == "stopped on request; the previous models are unchanged"
    assert execution.poll() == 3  # EXIT_CANCELLED: the training's own clean stop, between two batches
    assert contents(store) == before and runner.jobs() == []


@pytest.mark.cluster
@pytest.mark.slow
def test_a_training_that_ignores_stop_is_killed_through_ray(launcher, store, tiny_npz):
    before = contents(store)
    runner = TrainingRunner(store, workers=1, launcher=launcher)
    runner.stop_grace = 3  # 10 s on the page
    job = submit(runner, LONG, "hung", tiny_npz, owner=CAROL)
    execution = reporting(runner, job)
    os.kill(execution.pid, signal.SIGSTOP)  # frozen: it never sees Stop's SIGTERM
    assert runner.cancel(job, CAROL)
    status = runner.wait(job, 60)
    assert status.state == "cancelled", status
    assert status.error == ("stopped on request: it had not stopped 3 s after Stop, so it was killed; "
                            "the previous models are unchanged")
    wait_for(lambda: gone(execution.pid) and gone(execution.worker_pid), 30)  # ray.kill, and the child with it
    assert contents(store) == before


@pytest.mark.cluster
@pytest.mark.slow
def test_the_page_trains_on_ray_when_the_address_is_set(ray_head, tiny_npz, tmp_path):
    """The page's own runner (page.resources), in a server process of its own, given the head's GCS address."""
    script = f"""
import json, sys
from mnist_core.settings import TrainingSettings
from page.jobs import training_job
from page.resources import training_runner
runner = training_runner({str(tmp_path)!r})
status = runner.submit(training_job(TrainingSettings("baseline", epochs=1, batch_size=64), "by-address",
                                    {str(tiny_npz)!r}, owner={ALICE!r}))
status = runner.wait(status.id, 300)
print(json.dumps({{"launcher": type(runner.launch).__name__, "state": status.state, "error": status.error,
                  "ray": "ray" in sys.modules}}))
sys.stdout.flush()
"""
    env = {**os.environ, **LOOPBACK_ONLY, "MNIST_RAY_ADDRESS": ray_head["gcs"]}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"launcher": "RayLauncher", "state": "done", "error": "", "ray": True}
    assert ModelStore(tmp_path).owner("by-address") == ALICE
