"""A class at once, in headless Chromium: three users press Train together; all are queued, none refused, all
finish, each with their own model (issue #19)."""

from __future__ import annotations

import time

import app_driver as driver
import numpy as np
import pytest

from mnist_core.store import ModelStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EPOCHS = 1  # of the quick preset's network on the server's 2,000 images: a few seconds each


@pytest.fixture(scope="module")
def server(mnist, tmp_path_factory):
    """The page over a store holding ``default`` (the shipped one if sound, else one trained now), training on a
    2,000-image real MNIST slice."""
    store = tmp_path_factory.mktemp("queue-models")
    data = tmp_path_factory.mktemp("queue-data") / "mnist-2k.npz"
    np.savez(data, x_train=mnist.x_train[20000:22000], y_train=mnist.y_train[20000:22000],
             x_test=mnist.x_test[5000:5500], y_test=mnist.y_test[5000:5500])
    driver.store_with_default(store, data, epochs=1)
    server = driver.start_server(store, tmp_path_factory.mktemp("server") / "streamlit.log", data=data)
    yield server, store
    server.stop()


def test_three_users_pressing_train_at_once_are_all_queued_and_all_finish(server, chromium):
    server, store = server
    names = ["class-ada", "class-bo", "class-cy"]
    pages = [driver.open_page(chromium, server.url) for _ in names]
    try:
        for page, name in zip(pages, names, strict=True):  # within a second or so: one after the other, no waiting
            driver.press_train(page, name, EPOCHS)
        seen = {name: set() for name in names}
        deadline = time.monotonic() + 600
        while not all("trained" in s for s in seen.values()):
            assert time.monotonic() < deadline, f"not all trainings finished in time: {seen}"
            for page, name in zip(pages, names, strict=True):
                seen[name].add(driver.training_state(page, name))
            assert not any("refused" in s for s in seen.values()), seen
            time.sleep(0.2)
        # Each was queued or started at once (one worker here: the first trains while the others wait) ...
        assert all(s & {"waiting", "training"} for s in seen.values()), seen
        assert sum("waiting" in s for s in seen.values()) >= 1, seen
        # ... and each user's own model is now theirs and active.
        for page, name in zip(pages, names, strict=True):
            selector = page.locator(driver.SIDEBAR).get_by_role("combobox", name="Active model")
            assert selector.input_value().startswith(f"{name} ·") and selector.input_value().endswith("· yours")
        owners = {ModelStore(store).owner(name) for name in names}
        assert len(owners) == 3 and "" not in owners
    finally:
        for page in pages:
            page.context.close()
