"""Load: three users draw without pause while a fourth trains; nothing fails, no session is lost."""

from __future__ import annotations

from pathlib import Path

import app_driver as driver
import load_driver as load
import numpy as np
import pytest

from mnist_core.handwriting import load_pendigits

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USERS = 3
SECONDS = 25


@pytest.fixture(scope="module")
def server(trained_store, mnist, tmp_path_factory):
    if not Path(driver.CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {driver.CHROMIUM} (apt-get install -y chromium)")
    folder = tmp_path_factory.mktemp("load")
    data = folder / "mnist-2k.npz"
    np.savez(data, x_train=mnist.x_train[:2000], y_train=mnist.y_train[:2000],
             x_test=mnist.x_test[:500], y_test=mnist.y_test[:500])
    models = folder / "models"
    models.mkdir()
    for suffix in (".keras", ".json"):
        (models / f"default{suffix}").write_bytes((trained_store.directory / f"small{suffix}").read_bytes())
    server = driver.start_server(models, folder / "server.log", data=data)
    yield server
    server.stop()


def test_users_draw_while_another_trains(server, handwriting_dir):
    digits = driver.choose_digits(load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra"), 4)
    trainer = load.Trainer(server.url)
    try:
        runs = load.run_users(server.url, digits, USERS, SECONDS, while_waiting=trainer.start)
        assert trainer.still_training()  # the drawing happened while it trained
        trainer.stop()
    finally:
        trainer.close()
    result = load.summary(runs)
    print(f"\n[load] {USERS} users drawing {SECONDS} s during a training: {result}")
    assert result["errors"] == []
    assert result["sessions_alive_at_end"] == USERS
    assert all(len(r.latencies) >= 3 for r in runs)  # every user kept getting predictions
