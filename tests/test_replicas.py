"""Two page servers on one models folder, as replicas behind a load balancer (issue #19): each sees the other's
new models, and trainings saving at the same moment never corrupt the store, whether their names differ or not.

Two real ``streamlit run app.py`` processes share ``MNIST_MODELS_DIR``; real users in headless Chromium press
Train on both at once. Each server has its own queue (one worker each), so both trainings run side by side.
"""

from __future__ import annotations

import time

import app_driver as driver
import numpy as np
import pytest

from mnist_core.predictor import Predictor
from mnist_core.store import ModelStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EPOCHS = 1  # of the quick preset's network on 2,000 images: a few seconds


@pytest.fixture(scope="module")
def replicas(mnist, tmp_path_factory):
    """Two servers over one store holding ``default``, training on a 2,000-image real MNIST slice."""
    store = tmp_path_factory.mktemp("shared-models")
    data = tmp_path_factory.mktemp("replica-data") / "mnist-2k.npz"
    np.savez(data, x_train=mnist.x_train[40000:42000], y_train=mnist.y_train[40000:42000],
             x_test=mnist.x_test[7000:7500], y_test=mnist.y_test[7000:7500])
    driver.store_with_default(store, data, epochs=1)
    drawings = tmp_path_factory.mktemp("shared-drawings")
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(driver.start_server(store, tmp_path_factory.mktemp(f"server-{name}") / "streamlit.log",
                                               data=data, drawings_dir=drawings))
        yield servers, store
    finally:
        for server in servers:
            server.stop()


def wait_until_ended(pages_and_names, timeout: float = 600) -> list[set[str]]:
    """Every state each page's sidebar showed for its training until all ended: "trained", or "refused" (an
    error or warning shown: the training failed or was refused)."""
    seen = [set() for _ in pages_and_names]
    deadline = time.monotonic() + timeout
    while not all(s & {"trained", "refused"} for s in seen):
        assert time.monotonic() < deadline, f"not all trainings ended in time: {seen}"
        for states, (page, name) in zip(seen, pages_and_names, strict=True):
            states.add(driver.training_state(page, name))
        time.sleep(0.2)
    return seen


def model_options(page) -> list[str]:
    """The Active model selector's choices, as a user sees them when opening it."""
    selector = page.locator(driver.SIDEBAR).get_by_role("combobox", name="Active model")
    selector.click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def test_replicas_see_each_others_models_and_same_moment_saves_never_corrupt_the_store(replicas, chromium):
    (a, b), store_dir = replicas
    store = ModelStore(store_dir)
    ada, bo = driver.open_page(chromium, a.url), driver.open_page(chromium, b.url)
    try:
        # Different names, pressed at once on the two servers: both train side by side and save.
        driver.press_train(ada, "replica-ada", EPOCHS)
        driver.press_train(bo, "replica-bo", EPOCHS)
        seen = wait_until_ended([(ada, "replica-ada"), (bo, "replica-bo")])
        assert all("trained" in s and "refused" not in s for s in seen), seen
        for page, other in ((ada, "replica-bo"), (bo, "replica-ada")):  # each server lists the other's model
            page.goto(page.url)
            page.get_by_text(driver.HINT).wait_for(timeout=60_000)
            assert any(o.startswith(f"{other} ·") and o.endswith("· another user's") for o in model_options(page))

        # A user whose next visit lands on the other replica (the same personal link) finds their model there.
        elsewhere = ada.context.new_page()
        elsewhere.goto(ada.url.replace(a.url, b.url))
        elsewhere.get_by_text(driver.HINT).wait_for(timeout=60_000)
        assert any(o.startswith("replica-ada ·") and o.endswith("· yours") for o in model_options(elsewhere))
        elsewhere.close()

        # The same name, pressed at once by two users on the two servers: one model, the first saved, is theirs;
        # the other's training fails saying so, and the model on disk is whole and is the winner's.
        driver.press_train(ada, "replica-same", EPOCHS)
        driver.press_train(bo, "replica-same", EPOCHS)
        seen = wait_until_ended([(ada, "replica-same"), (bo, "replica-same")])
        assert sorted("trained" if "trained" in s else "refused" for s in seen) == ["refused", "trained"], seen
        winner, loser = (ada, bo) if "trained" in seen[0] else (bo, ada)
        loser.locator(driver.SIDEBAR).get_by_text("cannot be replaced").wait_for(timeout=10_000)
        entry = store.inspect("replica-same")
        assert entry.ok, entry.problem  # its three files agree: checksum, card, LiteRT copy
        assert entry.card.owner == driver.owner_in(winner.url) != driver.owner_in(loser.url)
        Predictor.load("replica-same", store).predict(np.zeros((28, 28), np.uint8))  # and it loads and reads
        assert sorted(m.name for m in store.list() if m.ok) == [
            "default", "replica-ada", "replica-bo", "replica-same"]
        assert not [p.name for p in store_dir.iterdir() if p.name.startswith(".tmp")]  # nothing half-written left
    finally:
        ada.context.close()
        bo.context.close()
