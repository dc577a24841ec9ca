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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
