"""The training runner: one run per server in a child process; stop, crash and kill leave models intact."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest

from mnist_core.predictor import Predictor
from mnist_core.settings import TrainingSettings
from mnist_core.store import ModelStore
from page.jobs import TrainingBusy, TrainingRunner

pytestmark = pytest.mark.slow

LONG = TrainingSettings("simple", epochs=200, batch_size=32)
SHORT = TrainingSettings("baseline", epochs=1, batch_size=64)


@pytest.fixture
def store(trained_store, tmp_path):
    """A store whose active model 'default' is a real trained model."""
    model, card = trained_store.load("small")
    card.name = "default"
    store = ModelStore(tmp_path)
    store.save(model, card)
    return store


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


def test_trains_reports_progress_and_saves(store, small_mnist_npz):
    runner = TrainingRunner(store)
    runner.start(SHORT, "fresh", small_mnist_npz, owner="session-1")
    status = runner.wait(300)
    assert status.state == "done", status.error
    assert status.owner == "session-1" and status.card.name == "fresh"
    assert [p.epoch for p in status.epochs] == [1] and status.progress.fraction_done == 1.0
    assert store.inspect("fresh").ok and store.inspect("fresh").card.test_error == status.card.test_error


def test_a_second_run_is_told_what_is_running(store, small_mnist_npz):
    runner = TrainingRunner(store)
    runner.start(LONG, "first", small_mnist_npz)
    try:
        wait_for(lambda: runner.status().progress is not None)
        with pytest.raises(TrainingBusy, match=r"already running on this server: 'first' \(simple, 200 epochs"):
            runner.start(SHORT, "second", small_mnist_npz)
    finally:
        runner.stop()
        runner.wait(120)


def test_stop_cancels_cleanly_and_keeps_the_previous_model(store, small_mnist_npz, pen_canvas):
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store)
    runner.start(LONG, "default", small_mnist_npz)
    wait_for(lambda: runner.status().progress is not None)
    assert runner.stop()
    status = runner.wait(120)
    assert status.state == "cancelled" and "previous models are unchanged" in status.error
    assert_default_intact(store, before, pen_canvas)


def test_bad_data_fails_with_the_datas_own_message(store, tmp_path, pen_canvas):
    before = (store.directory / "default.keras").read_bytes()
    bad = tmp_path / "train.csv"
    bad.write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + "12," + ",".join(["0"] * 784) + "\n")
    runner = TrainingRunner(store)
    runner.start(SHORT, "default", bad)
    status = runner.wait(120)
    assert status.state == "failed" and "train.csv: row 2, column 'label': 12 is not a digit 0-9" in status.error
    assert_default_intact(store, before, pen_canvas)


def test_sigkill_mid_epoch_loses_nothing_and_the_next_run_works(store, small_mnist_npz, pen_canvas):
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store)
    runner.start(LONG, "default", small_mnist_npz)
    wait_for(lambda: runner.status().progress is not None and runner.status().progress.batch > 5)
    os.kill(runner._job.process.pid, signal.SIGKILL)
    status = runner.wait(60)
    assert status.state == "failed" and "status -9" in status.error
    assert_default_intact(store, before, pen_canvas)
    runner.start(SHORT, "after-kill", small_mnist_npz)
    assert runner.wait(300).state == "done"
    assert store.inspect("after-kill").ok


def test_sigkill_while_saving_loses_nothing(store, small_mnist_npz, pen_canvas):
    """Kill the training process the moment its temporary model file appears in the store."""
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store)
    runner.start(TrainingSettings("large", epochs=1, batch_size=64, members=2), "default", small_mnist_npz)
    deadline = time.monotonic() + 300
    while not any(p.name.startswith(".tmp-") for p in os.scandir(store.directory)):  # no sleep: a save is brief
        assert time.monotonic() < deadline and runner.status().running, "no save was seen"
    os.kill(runner._job.process.pid, signal.SIGKILL)
    assert runner.wait(60).state == "failed"
    after = (store.directory / "default.keras").read_bytes()
    if after == before:
        assert_default_intact(store, before, pen_canvas)
    else:  # the kill landed after the atomic rename: the new model is complete, never half-written
        assert store.inspect("default").ok
        assert_default_intact(store, after, pen_canvas)
    # The runner removed what the killed save left behind.
    assert sorted(p.name for p in store.directory.iterdir()) == ["default.json", "default.keras", "default.tflite"]


def test_training_runs_at_lower_priority(store, small_mnist_npz):
    runner = TrainingRunner(store)
    runner.start(LONG, "niced", small_mnist_npz)
    try:
        wait_for(lambda: runner.status().progress is not None)
        lowest = 19  # a niceness cannot go beyond it, even when the tests themselves run niced
        expected = min(os.getpriority(os.PRIO_PROCESS, 0) + 10, lowest)
        assert os.getpriority(os.PRIO_PROCESS, runner._job.process.pid) >= expected
    finally:
        runner.stop()
        runner.wait(120)
    assert np.isfinite(runner.status().finished)


def hang(runner: TrainingRunner, name: str, data) -> subprocess.Popen:
    """Start a long training and freeze its process (SIGSTOP) once it reports: a hung training."""
    runner.start(LONG, name, data)
    wait_for(lambda: runner.status().progress is not None)
    process = runner._job.process
    os.kill(process.pid, signal.SIGSTOP)
    return process


def test_stop_kills_a_hung_training_after_the_grace_period(store, small_mnist_npz, pen_canvas):
    """A SIGSTOPped child never sees Stop's SIGTERM: before, it held the server's training slot for ever."""
    before = (store.directory / "default.keras").read_bytes()
    runner = TrainingRunner(store)
    runner.stop_grace = 3  # 10 s on the page
    process = hang(runner, "hung", small_mnist_npz)
    assert runner.stop()
    status = runner.wait(30)
    assert status.state == "cancelled", status
    assert status.error == ("stopped on request: it had not stopped 3 s after Stop, so it was killed; "
                            "the previous models are unchanged")
    assert process.poll() == -signal.SIGKILL and not runner.status().running
    assert_default_intact(store, before, pen_canvas)
    assert sorted(p.name for p in store.directory.iterdir()) == ["default.json", "default.keras", "default.tflite"]


def test_a_training_that_reports_nothing_for_too_long_is_ended(store, small_mnist_npz):
    runner = TrainingRunner(store)
    runner.silence_limit = 4  # 10 min on the page
    process = hang(runner, "silent", small_mnist_npz)
    status = runner.wait(30)
    assert status.state == "failed", status
    assert status.error == ("it had reported nothing for 4 s (hung), so it was killed; the previous models are "
                            "unchanged")
    assert process.poll() == -signal.SIGKILL
    with pytest.raises(TrainingBusy):  # the slot is free again: a new training starts (and is refused a second)
        runner.start(LONG, "next", small_mnist_npz)
        runner.start(SHORT, "again", small_mnist_npz)
    runner.stop()
    assert runner.wait(120).state == "cancelled"
