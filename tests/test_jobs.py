"""The training queue, real trainings in child processes: order, limits, cancel; kills and restarts harm no model."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_core.predictor import Predictor
from mnist_core.settings import TrainingSettings
from mnist_core.store import LOCK_FILE, ModelOwnedError, ModelStore
from page.jobs import (
    QueueLimit,
    TrainingRunner,
    adapted_name,
    default_name,
    default_workers,
    finetune_job,
    training_job,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LONG = TrainingSettings("simple", epochs=200, batch_size=32)
SHORT = TrainingSettings("baseline", epochs=1, batch_size=64)
ALICE, BOB, CAROL = "a1" * 8, "b2" * 8, "c3" * 8  # owner ids, as mnist_core.identity.owner_of makes them


@pytest.fixture
def store(trained_store, tmp_path):
    """A store whose active model 'default' is a real trained model."""
    model, card = trained_store.load("small")
    card.name = "default"
    store = ModelStore(tmp_path)
    store.save(model, card)
    return store


def files(store: ModelStore) -> list[str]:
    return sorted(p.name for p in store.directory.iterdir() if p.name != LOCK_FILE)


def assert_default_intact(store: ModelStore, before: bytes, pen_canvas) -> None:
    assert (store.directory / "default.keras").read_bytes() == before
    assert [m.name for m in store.list() if m.ok] == ["default"]  # nothing half-written is listed
    predictor = Predictor.load("default", store)
    alone, in_a_batch = predictor.predict(pen_canvas), predictor.predict_many([pen_canvas, pen_canvas])[0]
    assert alone.digit is not None  # and the LiteRT copy in use (one drawing) computes what the model does (batches):
    np.testing.assert_allclose(alone.probabilities, in_a_batch.probabilities, atol=1e-5)


@pytest.fixture(scope="module")
def pen_canvas(handwriting_dir):
    from mnist_core.handwriting import load_pendigits, render_pen_digit

    return render_pen_digit(load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")[0])


def wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def submit(runner, settings, name, data, owner="", watch=None):
    return runner.submit(training_job(settings, name, data, owner=owner, watch=watch)).id


def reporting(runner, job_id, batches=0):
    """Wait until job ``job_id`` runs and has reported more than ``batches`` batches."""
    wait_for(lambda: (s := runner.status(job_id)).progress is not None and s.progress.batch > batches)


def process_of(runner, job_id) -> subprocess.Popen:
    return runner._running[job_id].execution


def stop_everything(runner):
    for status in runner.jobs():
        runner.cancel(status.id)
    assert runner.wait_all(120)


def test_trains_reports_progress_and_saves_with_its_owner(store, tiny_npz):
    runner = TrainingRunner(store, workers=1)
    job = submit(runner, SHORT, "fresh", tiny_npz, owner=ALICE)
    status = runner.wait(job, 300)
    assert status.state == "done", status.error
    assert status.owner == ALICE and status.card.name == "fresh" and status.card.owner == ALICE
    assert [p.epoch for p in status.epochs] == [1] and status.progress.fraction_done == 1.0
    assert store.inspect("fresh").ok and store.inspect("fresh").card.test_error == status.card.test_error
    assert store.owner("fresh") == ALICE and f"--owner {ALICE}" in store.inspect("fresh").card.command
    assert runner.jobs() == [] and runner.jobs_of(ALICE) == [status]  # the outcome stays, for its owner only
    assert runner.jobs_of(BOB) == []


def test_jobs_wait_in_order_and_each_user_has_one_running_and_one_waiting(store, tiny_npz):
    runner = TrainingRunner(store, workers=1)
    first = submit(runner, LONG, "a-long", tiny_npz, owner=ALICE)
    reporting(runner, first)
    second = submit(runner, SHORT, "b-short", tiny_npz, owner=BOB)
    third = submit(runner, SHORT, "c-short", tiny_npz, owner=CAROL)
    mine = submit(runner, SHORT, "a-next", tiny_npz, owner=ALICE)  # Alice's one waiting job
    with pytest.raises(QueueLimit, match=r"you already have a training waiting: 'a-next' \(baseline, 1 epoch, "
                                         r"batch 64\); each user may have one training running and one waiting"):
        submit(runner, SHORT, "a-third", tiny_npz, owner=ALICE)
    jobs = runner.jobs()
    assert [(s.name, s.state, s.position) for s in jobs] == [
        ("a-long", "running", 0), ("b-short", "queued", 1), ("c-short", "queued", 2), ("a-next", "queued", 3)]
    # The estimates follow the queue: no one waits less than the one before (the long job's own estimate first).
    waits = [s.wait_seconds for s in jobs[1:]]
    assert waits[0] is not None and waits[0] > 0 and waits == sorted(waits, key=lambda w: (w is None, w or 0))
    assert [s.name for s in runner.jobs_of(ALICE)] == ["a-long", "a-next"]
    assert runner.cancel(first, owner=ALICE)
    assert runner.wait(first, 120).state == "cancelled"
    for job in (second, third, mine):
        assert runner.wait(job, 300).state == "done", runner.status(job).error
    started = [runner.status(j).started for j in (second, third, mine)]
    assert started == sorted(started)  # first in, first out
    assert runner.status(first) is None  # each user's last job is remembered: Alice's is 'a-next'
    assert {runner.status(j).card.owner for j in (second, third)} == {BOB, CAROL}


def test_a_users_waiting_job_lets_others_pass_while_their_other_one_runs(store, tiny_npz):
    runner = TrainingRunner(store, workers=2)
    try:
        long = submit(runner, LONG, "a-long", tiny_npz, owner=ALICE)
        reporting(runner, long)
        later = submit(runner, SHORT, "a-later", tiny_npz, owner=ALICE)  # a worker is free, but not for Alice
        bobs = submit(runner, SHORT, "b-model", tiny_npz, owner=BOB)
        assert runner.status(later).state == "queued"
        assert runner.wait(bobs, 300).state == "done"
        assert runner.status(later).state == "queued"
    finally:
        runner.cancel(long)
    assert runner.wait(later, 300).state == "done"


def test_cancel_while_queued_takes_it_out_and_removes_its_files(store, tiny_npz, pen_canvas):
    from mnist_core.preprocessing import to_mnist

    runner = TrainingRunner(store, workers=1)
    running = submit(runner, LONG, "a-long", tiny_npz, owner=ALICE)
    job = training_job(SHORT, "b-model", tiny_npz, owner=BOB, watch=to_mnist(pen_canvas).image)
    (watch_file,) = job.temporaries
    waiting = runner.submit(job).id
    assert Path(watch_file).is_file() and runner.in_use() == ({str(tiny_npz)}, set())
    assert not runner.cancel(waiting, owner=ALICE)  # only its owner may
    assert runner.cancel(waiting, owner=BOB)
    status = runner.status(waiting)
    assert status.state == "cancelled" and status.error == "cancelled before it started"
    assert not Path(watch_file).exists() and [s.id for s in runner.jobs()] == [running]
    assert runner.jobs_of(BOB) == [status]
    stop_everything(runner)
    assert not (store.directory / "b-model.keras").exists()


def test_cancel_while_running_stops_cleanly_and_keeps_the_previous_model(store, small_mnist_npz, pen_canvas):
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store, workers=1)
    job = submit(runner, LONG, "default", small_mnist_npz)
    reporting(runner, job)
    assert runner.cancel(job)
    status = runner.wait(job, 120)
    assert status.state == "cancelled" and "previous models are unchanged" in status.error
    assert_default_intact(store, before, pen_canvas)


def test_bad_data_fails_with_the_datas_own_message(store, tmp_path, pen_canvas):
    before = (store.directory / "default.keras").read_bytes()
    bad = tmp_path / "train.csv"
    bad.write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + "12," + ",".join(["0"] * 784) + "\n")
    runner = TrainingRunner(store, workers=1)
    status = runner.wait(submit(runner, SHORT, "default", bad), 120)
    assert status.state == "failed" and "train.csv: row 2, column 'label': 12 is not a digit 0-9" in status.error
    assert_default_intact(store, before, pen_canvas)


def test_a_killed_worker_fails_its_job_and_the_queue_goes_on(store, small_mnist_npz, tiny_npz):
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store, workers=1)
    job = submit(runner, LONG, "default", small_mnist_npz)
    waiting = submit(runner, SHORT, "after-kill", tiny_npz, owner=BOB)
    reporting(runner, job, batches=5)
    os.kill(process_of(runner, job).pid, signal.SIGKILL)
    status = runner.wait(job, 60)
    assert status.state == "failed" and "status -9" in status.error
    assert runner.wait(waiting, 300).state == "done"
    assert (store.directory / "default.keras").read_bytes() == before
    assert [m.name for m in store.list() if m.ok] == ["default", "after-kill"]


def test_sigkill_while_saving_loses_nothing(store, small_mnist_npz, pen_canvas):
    """Kill the training process the moment its temporary model file appears in the store."""
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store, workers=1)
    job = submit(runner, TrainingSettings("large", epochs=1, batch_size=64, members=2), "default", small_mnist_npz)
    deadline = time.monotonic() + 300
    while not any(p.name.startswith(".tmp-") for p in os.scandir(store.directory)):  # no sleep: a save is brief
        assert time.monotonic() < deadline and runner.status(job).running, "no save was seen"
    os.kill(process_of(runner, job).pid, signal.SIGKILL)
    assert runner.wait(job, 60).state == "failed"
    after = (store.directory / "default.keras").read_bytes()
    if after == before:
        assert_default_intact(store, before, pen_canvas)
    else:  # the kill landed after the atomic rename: the new model is complete, never half-written
        assert store.inspect("default").ok
        assert_default_intact(store, after, pen_canvas)
    # The runner removed what the killed save left behind.
    assert files(store) == ["default.json", "default.keras", "default.tflite"]


def test_a_new_runner_cleans_up_after_a_server_killed_while_a_training_saved(store, tiny_npz):
    """What a restarted server finds: a training of the previous one killed mid-save. No job is running, and
    the store holds whole models only."""
    before = (store.directory / "default.keras").read_bytes()
    child = subprocess.Popen([sys.executable, "-m", "mnist_core", "--models-dir", str(store.directory), "train",
                              "--arch", "large", "--members", "2", "--epochs", "1", "--data", str(tiny_npz),
                              "--name", "default"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not any(p.name.startswith(".tmp-") for p in os.scandir(store.directory)):  # no sleep: a save is brief
        assert time.monotonic() < deadline and child.poll() is None, "no save was seen"
    child.kill()
    child.wait()
    left = [name for name in files(store) if name.startswith(".tmp-")]
    runner = TrainingRunner(store, workers=1)
    assert runner.jobs() == []
    assert files(store) == ["default.json", "default.keras", "default.tflite"], left
    entry = store.inspect("default")
    assert entry.ok and ((store.directory / "default.keras").read_bytes() == before or entry.card.epochs_run == 1)
    assert runner.wait(submit(runner, SHORT, "next", tiny_npz, owner=ALICE), 300).state == "done"


def test_nobody_takes_a_name_another_user_trained_or_will_train(store, tiny_npz):
    runner = TrainingRunner(store, workers=1)
    assert runner.wait(submit(runner, SHORT, "alices", tiny_npz, owner=ALICE), 300).state == "done"
    with pytest.raises(ModelOwnedError, match=rf"'alices' was trained by owner {ALICE} and cannot be replaced by "
                                              rf"owner {BOB}"):
        submit(runner, SHORT, "alices", tiny_npz, owner=BOB)
    with pytest.raises(ModelOwnedError, match="'default' was trained by the command line"):
        submit(runner, SHORT, "default", tiny_npz, owner=BOB)
    running = submit(runner, LONG, "coming", tiny_npz, owner=ALICE)
    with pytest.raises(ValueError, match="another user's training in the queue will save a model named 'coming'"):
        submit(runner, SHORT, "coming", tiny_npz, owner=BOB)
    runner.cancel(running)
    assert runner.wait(running, 120).state == "cancelled"
    assert runner.wait(submit(runner, SHORT, "alices", tiny_npz, owner=ALICE), 300).state == "done"  # hers to replace
    assert default_name(SHORT, ALICE) != default_name(SHORT, BOB)
    assert default_name(SHORT, ALICE) == f"baseline-1e-{ALICE[:6]}" and default_name(SHORT, "") == "baseline-1e"


def test_the_command_line_refuses_a_malformed_owner(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnist_core", "--models-dir", str(tmp_path), "train", "--owner",
                           "alice@example.org"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "'alice@example.org' is not an owner id (16 hex digits" in done.stderr


def test_the_number_of_workers_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MNIST_TRAINING_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("MNIST_TRAINING_WORKERS", "none")
    with pytest.raises(ValueError, match="MNIST_TRAINING_WORKERS='none': give the number of trainings"):
        default_workers()
    monkeypatch.delenv("MNIST_TRAINING_WORKERS")
    assert default_workers() == max(1, os.cpu_count() // 2)


def test_training_runs_at_lower_priority(store, small_mnist_npz):
    runner = TrainingRunner(store, workers=1)
    job = submit(runner, LONG, "niced", small_mnist_npz)
    try:
        reporting(runner, job)
        lowest = 19  # a niceness cannot go beyond it, even when the tests themselves run niced
        expected = min(os.getpriority(os.PRIO_PROCESS, 0) + 10, lowest)
        assert os.getpriority(os.PRIO_PROCESS, process_of(runner, job).pid) >= expected
    finally:
        runner.cancel(job)
        runner.wait(job, 120)
    assert np.isfinite(runner.status(job).finished)


def hang(runner: TrainingRunner, name: str, data) -> tuple[str, subprocess.Popen]:
    """Start a long training and freeze its process (SIGSTOP) once it reports: a hung training."""
    job = submit(runner, LONG, name, data)
    reporting(runner, job)
    process = process_of(runner, job)
    os.kill(process.pid, signal.SIGSTOP)
    return job, process


def test_stop_kills_a_hung_training_after_the_grace_period(store, small_mnist_npz, pen_canvas):
    """A SIGSTOPped child never sees Stop's SIGTERM: before, it held the server's training slot for ever."""
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store, workers=1)
    runner.stop_grace = 3  # 10 s on the page
    job, process = hang(runner, "hung", small_mnist_npz)
    assert runner.cancel(job)
    status = runner.wait(job, 30)
    assert status.state == "cancelled", status
    assert status.error == ("stopped on request: it had not stopped 3 s after Stop, so it was killed; "
                            "the previous models are unchanged")
    assert process.poll() == -signal.SIGKILL and runner.jobs() == []
    assert_default_intact(store, before, pen_canvas)
    assert files(store) == ["default.json", "default.keras", "default.tflite"]


def test_a_training_that_reports_nothing_for_too_long_is_ended_and_frees_its_worker(store, small_mnist_npz, tiny_npz):
    runner = TrainingRunner(store, workers=1)
    runner.silence_limit = 4  # 10 min on the page
    job, process = hang(runner, "silent", small_mnist_npz)
    waiting = submit(runner, SHORT, "next", tiny_npz, owner=BOB)
    status = runner.wait(job, 30)
    assert status.state == "failed", status
    assert status.error == ("it had reported nothing for 4 s (hung), so it was killed; the previous models are "
                            "unchanged")
    assert process.poll() == -signal.SIGKILL
    assert runner.wait(waiting, 300).state == "done"


def test_a_finetune_job_adapts_a_model_to_a_users_drawings_and_protects_its_base(store, keep_pen_drawings, tmp_path):
    from mnist_core.drawings import DrawingStore

    drawings = DrawingStore(tmp_path / "drawings")
    keep_pen_drawings(drawings, ALICE, 40, "default")  # real pen digits as canvas PNGs, kept as the page keeps them
    name = adapted_name("default", ALICE)
    assert name == f"default-yours-{ALICE[:6]}" and adapted_name("d" * 64, ALICE).endswith(f"-yours-{ALICE[:6]}")
    runner = TrainingRunner(store, workers=1)
    job = runner.submit(finetune_job("default", drawings.images_dir(ALICE), name, ALICE, 40))
    assert job.job.kind == "finetune" and job.job.label == "fine-tune of default on your 40 drawings"
    assert "default" in runner.in_use()[1]  # its base may not be deleted while it is queued or runs
    status = runner.wait(job.id, 300)
    assert status.state == "done", status.error
    card = store.inspect(name).card
    assert card.owner == ALICE and card.base_model.name == "default" and card.adaptation.count == 40
    assert card.adaptation.counts == drawings.counts(ALICE) and card.adaptation.held_back >= 1
    assert card.adaptation.accuracy_before is not None and card.adaptation.accuracy_after is not None
    assert status.card.adaptation == card.adaptation and runner.in_use() == (set(), set())
    with pytest.raises(ModelOwnedError):  # nobody else's job may replace it
        runner.submit(finetune_job("default", drawings.images_dir(ALICE), name, BOB, 40))
