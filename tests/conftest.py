"""Shared fixtures: where the real data lives, found through environment variables.

``MNIST_DATA``       a directory with the four original MNIST IDX files
                     (CI: ``../shared/data/mnist``).
``HANDWRITING_DATA`` the folder holding ``usps/``, ``semeion/``, ``optdigits/``
                     and ``pendigits/`` (CI: ``../shared/data``).

A test that needs data that is not configured is skipped, saying which variable to set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_exit_status: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config):
    """End the run with pytest's own status once it has reported everything, skipping the interpreter's
    teardown: with TensorFlow loaded and its thread pools alive (the page's warm-up thread, say), that
    teardown can abort the process ("terminate called after throwing an instance of ''", status 134)
    after every test has passed."""
    if _exit_status:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])


def _dir_from_env(name: str, must_hold: str) -> Path:
    value = os.environ.get(name, "")
    if not value:
        pytest.skip(f"real data not configured: set {name} (see README, 'Tests')")
    path = Path(value).expanduser()
    if not (path / must_hold).exists():
        pytest.skip(f"{name}={value} does not hold {must_hold}")
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The directory of the four original MNIST IDX files."""
    return _dir_from_env("MNIST_DATA", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="session")
def handwriting_dir() -> Path:
    """The folder of non-MNIST handwriting (USPS, Semeion, optdigits, pendigits)."""
    return _dir_from_env("HANDWRITING_DATA", "pendigits/pendigits-orig.tra")


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """All of real MNIST, loaded once per test session."""
    from mnist_core.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def small_mnist_npz(mnist, tmp_path_factory) -> Path:
    """A real slice of MNIST as a Keras-format .npz: 6,000 training and 1,000 test images."""
    import numpy as np

    path = tmp_path_factory.mktemp("data") / "mnist-small.npz"
    np.savez(path, x_train=mnist.x_train[:6000], y_train=mnist.y_train[:6000],
             x_test=mnist.x_test[:1000], y_test=mnist.y_test[:1000])
    return path


@pytest.fixture(scope="session")
def tiny_npz(mnist, tmp_path_factory) -> Path:
    """1,000 real training and 200 real test digits: a training of a few seconds."""
    import numpy as np

    path = tmp_path_factory.mktemp("tiny") / "mnist-1k.npz"
    np.savez(path, x_train=mnist.x_train[:1000], y_train=mnist.y_train[:1000],
             x_test=mnist.x_test[:200], y_test=mnist.y_test[:200])
    return path


@pytest.fixture(scope="session")
def keep_pen_drawings(handwriting_dir):
    """``keep(store, owner, n, model)``: the first ``n`` real pen digits of pendigits writer 17 (never trained
    on), drawn as canvas PNGs and kept in ``store`` (a DrawingStore) as the page keeps them, labelled."""
    import io

    import numpy as np
    from PIL import Image

    from mnist_core.handwriting import load_pendigits, random_canvas_drawing

    pen = [d for d in load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra") if d.writer == 17]

    def keep(store, owner: str, n: int, model: str) -> None:
        rng = np.random.default_rng(0)
        for digit in pen[:n]:
            png = io.BytesIO()
            Image.fromarray(random_canvas_drawing(digit, rng)).save(png, format="PNG")
            store.add(owner, png.getvalue(), digit.label, predicted=digit.label, model=model)

    return keep


@pytest.fixture(scope="session")
def trained_store(small_mnist_npz, tmp_path_factory):
    """A model store holding one real model, 'small': the simple CNN trained 2 epochs on 6,000 images."""
    from mnist_core.data import load_mnist
    from mnist_core.settings import TrainingSettings
    from mnist_core.store import ModelStore
    from mnist_core.workflow import train_and_save

    store = ModelStore(tmp_path_factory.mktemp("models"))
    settings = TrainingSettings("simple", epochs=2, batch_size=64, validation_split=0.1)
    train_and_save(load_mnist(small_mnist_npz), settings, "small", store, command="pytest fixture")
    return store


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium for a module of browser tests (tests/app_driver.py); they are skipped without it."""
    import app_driver

    with app_driver.chromium_browser() as browser:
        yield browser
