"""mnist_core.data on real MNIST and on real files written to ``tmp_path`` (no mocks).

Every source format is written from real MNIST images: IDX directories gzipped and not, Keras'
``mnist.npz``, Kaggle's ``train.csv`` and ``test.csv`` and Keras' cache. Malformed files are made by
breaking valid ones, and each must raise a DataError naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_core import data as data_mod
from mnist_core.data import (
    DataError,
    load_kaggle_csv,
    load_mnist,
    resolve_source,
    split_validation,
    with_extra_training,
)

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
PIXEL_COLUMNS = [f"pixel{i}" for i in range(784)]
TRAIN_HEADER = ",".join(["label", *PIXEL_COLUMNS])
TEST_HEADER = ",".join(PIXEL_COLUMNS)
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


# --- writing real files -------------------------------------------------------------------------


def idx_bytes(a: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file: magic (2051 images, 2049 labels), the dimensions as big-endian int32, uint8 data."""
    magic = magic if magic is not None else (2051 if a.ndim == 3 else 2049)
    header = b"".join(int(v).to_bytes(4, "big") for v in (magic, *a.shape))
    return header + np.ascontiguousarray(a, dtype=np.uint8).tobytes()


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], gz: bool = True, sep: str = "-") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_NAMES.items():
        raw = idx_bytes(arrays[key])
        name = name.replace("-idx", f"{sep}idx")
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (directory / name).write_bytes(raw)
    return directory


def idx_file(directory: Path, key: str, gz: bool = True) -> Path:
    return directory / (IDX_NAMES[key] + (".gz" if gz else ""))


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """A Kaggle Digit Recognizer CSV: train.csv with labels, test.csv without."""
    flat = images.reshape(len(images), -1).astype(np.int64)
    if labels is None:
        table, header = flat, TEST_HEADER
    else:
        table, header = np.column_stack([labels.astype(np.int64), flat]), TRAIN_HEADER
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")
    return path


def csv_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def raises(path: Path | str, reason: str):
    """pytest.raises for a DataError whose message names ``path`` and then matches ``reason``."""
    return pytest.raises(DataError, match=re.escape(str(path)) + ".*" + reason)


def same_data(loaded, arrays: dict[str, np.ndarray]) -> None:
    for key, expected in arrays.items():
        got = getattr(loaded, key)
        assert got.dtype == np.uint8, key
        np.testing.assert_array_equal(got, expected, err_msg=key)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(mnist) -> dict[str, np.ndarray]:
    """The first 1,000 training and 200 test digits of real MNIST."""
    return {
        "x_train": mnist.x_train[:1000].copy(),
        "y_train": mnist.y_train[:1000].copy(),
        "x_test": mnist.x_test[:200].copy(),
        "y_test": mnist.y_test[:200].copy(),
    }


@pytest.fixture
def small_dir(tmp_path, small) -> Path:
    """A directory of the four IDX files, gzipped, holding ``small``."""
    return write_idx_dir(tmp_path / "mnist", small)


@pytest.fixture
def train_csv(tmp_path, mnist) -> Path:
    """A Kaggle train.csv of 600 real digits."""
    return write_csv(tmp_path / "train.csv", mnist.x_train[:600], mnist.y_train[:600])


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(data_mod.ENV_VAR, raising=False)


@pytest.fixture
def keras_home(tmp_path, monkeypatch, no_env) -> Path:
    """An empty Keras home of our own, so the user's ~/.keras is never read or written."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def offline(monkeypatch):
    """Send HTTP(S) through a proxy port nobody listens on: any download is refused at once, network or not."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)


# --- real MNIST -----------------------------------------------------------------------------------


def test_real_mnist_sizes_types_and_range(mnist):
    assert (len(mnist.x_train), len(mnist.y_train), len(mnist.x_test), len(mnist.y_test)) == (60_000,) * 2 + (
        10_000,
    ) * 2
    for x in (mnist.x_train, mnist.x_test):
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28)
        assert x.max() == 255 and x.min() == 0
    for y in (mnist.y_train, mnist.y_test):
        assert y.dtype == np.uint8 and y.ndim == 1
        np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_real_mnist_is_ink_on_a_zero_background(mnist):
    x = mnist.x_train
    # The corners are background in every image, and background is exactly 0...
    assert not x[:, :2, :2].any() and not x[:, -2:, -2:].any()
    border = np.concatenate([x[:, 0, :], x[:, -1, :], x[:, :, 0], x[:, :, -1]], axis=1)
    assert (border == 0).mean() > 0.999
    # ...most pixels are 0, and the ink is high: strokes reach 255 and the inked pixels are mostly bright.
    assert (x == 0).mean() > 0.75
    assert np.median(x.max(axis=(1, 2))) == 255
    assert x[x > 0].mean() > 128


def test_real_mnist_first_labels(mnist, mnist_dir):
    assert mnist.y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert mnist.source == str(mnist_dir)


def test_real_mnist_sha256_stable_between_loads(mnist, mnist_dir):
    again = load_mnist(mnist_dir)
    assert re.fullmatch(r"[0-9a-f]{64}", mnist.sha256)
    assert again.sha256 == mnist.sha256
    same_data(again, {k: getattr(mnist, k) for k in IDX_NAMES})


def test_arrays_are_writable(mnist):
    # Every source gives arrays the caller may modify in place (np.random.shuffle etc.).
    assert all(getattr(mnist, k).flags.writeable for k in IDX_NAMES)


# --- every source -----------------------------------------------------------------------------------


def test_idx_dir_not_gzipped_real_files(tmp_path, mnist_dir, mnist):
    """The real files, decompressed: byte for byte the original distribution."""
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in IDX_NAMES.values():
        (plain / name).write_bytes(gzip.decompress((mnist_dir / f"{name}.gz").read_bytes()))
    loaded = load_mnist(plain)
    same_data(loaded, {k: getattr(mnist, k) for k in IDX_NAMES})
    assert loaded.source == str(plain)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
@pytest.mark.parametrize("sep", ["-", "."])
def test_idx_dir_slices_both_separators(tmp_path, small, gz, sep):
    directory = write_idx_dir(tmp_path / "d", small, gz=gz, sep=sep)
    same_data(load_mnist(directory), small)


def test_idx_dir_mixing_gzipped_and_plain(tmp_path, small, small_dir):
    raw = gzip.decompress(idx_file(small_dir, "x_test").read_bytes())
    idx_file(small_dir, "x_test").unlink()
    idx_file(small_dir, "x_test", gz=False).write_bytes(raw)
    same_data(load_mnist(small_dir), small)


def test_keras_npz(tmp_path, small):
    path = tmp_path / "mnist.npz"
    np.savez(path, **small)
    loaded = load_mnist(path)
    same_data(loaded, small)
    assert loaded.source == str(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_keras_npz_compressed_and_other_integer_dtypes(tmp_path, small):
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, **{k: v.astype(np.int64) for k, v in small.items()})
    same_data(load_mnist(path), small)


def test_kaggle_train_csv_holdout(train_csv, mnist):
    loaded = load_mnist(train_csv)
    # The last sixth is held out as the test set, in file order.
    same_data(
        loaded,
        {
            "x_train": mnist.x_train[:500],
            "y_train": mnist.y_train[:500],
            "x_test": mnist.x_train[500:600],
            "y_test": mnist.y_train[500:600],
        },
    )
    assert loaded.x_val is None and loaded.source == str(train_csv)
    x, y = load_kaggle_csv(train_csv)
    np.testing.assert_array_equal(x, mnist.x_train[:600])
    np.testing.assert_array_equal(y, mnist.y_train[:600])


def test_kaggle_test_csv_has_images_to_predict(tmp_path, mnist):
    path = write_csv(tmp_path / "test.csv", mnist.x_test[:300])
    x, y = load_kaggle_csv(path)
    assert y is None
    assert x.dtype == np.uint8 and x.shape == (300, 28, 28)
    np.testing.assert_array_equal(x, mnist.x_test[:300])
    np.testing.assert_array_equal(load_kaggle_csv(path, labelled=False)[0], x)
    # It cannot be a training source: no labels.
    with raises(path, "first column is 'pixel0', expected 'label'"):
        load_mnist(path)


def test_kaggle_train_csv_refused_as_test_csv(train_csv):
    with raises(train_csv, "has a 'label' column"):
        load_kaggle_csv(train_csv, labelled=False)


def test_kaggle_csv_windows_line_endings_bom_and_blank_lines(tmp_path, mnist):
    lines = csv_lines(write_csv(tmp_path / "a.csv", mnist.x_train[:20], mnist.y_train[:20]))
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines[:10] + [""] + lines[10:]) + "\r\n\r\n").encode())
    x, y = load_kaggle_csv(path)
    np.testing.assert_array_equal(x, mnist.x_train[:20])
    np.testing.assert_array_equal(y, mnist.y_train[:20])


@pytest.mark.parametrize("n", [4_200, 600])
def test_kaggle_csv_tutorial_split(tmp_path, mnist, n):
    path = write_csv(tmp_path / "train.csv", mnist.x_train[:n], mnist.y_train[:n])
    loaded = load_mnist(path, csv_split="tutorial")
    n_train, n_val = round(n * 35 / 42), round(n * 5 / 42)
    if n == 4_200:
        assert (n_train, n_val) == (3_500, 500)  # the tutorial's 35,000 / 5,000 / 2,000, a tenth of the size
    x, y = mnist.x_train, mnist.y_train
    same_data(
        loaded,
        {
            "x_train": x[:n_train],
            "y_train": y[:n_train],
            "x_val": x[n_train : n_train + n_val],
            "y_val": y[n_train : n_train + n_val],
            "x_test": x[n_train + n_val : n],
            "y_test": y[n_train + n_val : n],
        },
    )


def test_unknown_csv_split_is_refused(small_dir):
    with pytest.raises(ValueError, match="csv_split must be 'holdout' or 'tutorial'"):
        load_mnist(small_dir, csv_split="random")


# --- Keras' cache and download -----------------------------------------------------------------------


def test_keras_cache_used_when_no_source_is_named(keras_home, small, offline):
    cached = keras_home / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    np.savez(cached, **small)
    assert data_mod._keras_cache_file() == cached
    loaded = load_mnist()
    same_data(loaded, small)
    assert str(cached) in loaded.source
    assert loaded.sha256 == hashlib.sha256(cached.read_bytes()).hexdigest()


def test_keras_cache_location_agrees_with_keras(tmp_path, keras_home, small):
    """Keras itself, started with this KERAS_HOME, finds the cached file where _keras_cache_file says it is.

    keras.utils.get_file returns a cached file without downloading when no hash is asked for; the origin
    is a refused port, so had Keras looked elsewhere it would have failed.
    """
    cached = data_mod._keras_cache_file()
    assert cached == keras_home / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    np.savez(cached, **small)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import keras\n"
        f"print(keras.utils.get_file('mnist.npz', origin='http://127.0.0.1:{port}/mnist.npz'))\n"
    )
    env = {**os.environ, "KERAS_HOME": str(keras_home), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip().splitlines()[-1]) == cached


def test_keras_cache_location_without_keras_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    assert data_mod._keras_cache_file() == home / ".keras" / "datasets" / "mnist.npz"


def test_nothing_cached_and_no_network_says_what_to_do(keras_home, offline):
    with pytest.raises(DataError, match=r"no MNIST source given.*pass --data PATH or set MNIST_DATA") as caught:
        load_mnist()
    assert str(keras_home / "datasets" / "mnist.npz") in str(caught.value)
    assert not (keras_home / "datasets" / "mnist.npz").exists()  # no partial download left behind


# --- which source --------------------------------------------------------------------------------------


def test_resolve_source_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "from_env"))
    assert resolve_source(tmp_path / "given") == tmp_path / "given"
    assert resolve_source(None) == tmp_path / "from_env"
    assert resolve_source("") == tmp_path / "from_env"
    monkeypatch.delenv("MNIST_DATA")
    assert resolve_source(None) is None
    monkeypatch.setenv("MNIST_DATA", "")
    assert resolve_source(None) is None


def test_load_precedence_argument_then_env_then_keras(tmp_path, monkeypatch, keras_home, small):
    def npz(name: str, n: int) -> Path:
        path = tmp_path / name
        np.savez(path, **{k: v[:n] for k, v in small.items()})
        return path

    given, from_env = npz("given.npz", 10), npz("env.npz", 20)
    cached = keras_home / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    np.savez(cached, **{k: v[:30] for k, v in small.items()})

    monkeypatch.setenv("MNIST_DATA", str(from_env))
    assert len(load_mnist(given).x_train) == 10
    assert len(load_mnist().x_train) == 20
    monkeypatch.delenv("MNIST_DATA")
    assert len(load_mnist().x_train) == 30


# --- split_validation ------------------------------------------------------------------------------------


def test_split_validation(small):
    x, y = small["x_train"], small["y_train"]
    index = np.arange(len(x))
    a = split_validation(index, y, fraction=0.2, seed=1)
    b = split_validation(index, y, fraction=0.2, seed=1)
    c = split_validation(index, y, fraction=0.2, seed=2)
    for got, again in zip(a, b, strict=True):
        np.testing.assert_array_equal(got, again)
    assert not np.array_equal(a[2], c[2])
    i_train, y_train, i_val, y_val = a
    assert (len(i_train), len(i_val)) == (800, 200)
    assert not set(i_train) & set(i_val)
    np.testing.assert_array_equal(np.sort(np.concatenate([i_train, i_val])), index)
    # Images and labels stay paired.
    np.testing.assert_array_equal(y_train, y[i_train])
    np.testing.assert_array_equal(y_val, y[i_val])
    x_train, _, x_val, _ = split_validation(x, y, fraction=0.2, seed=1)
    np.testing.assert_array_equal(x_train, x[i_train])
    np.testing.assert_array_equal(x_val, x[i_val])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_split_validation_rejects_fractions_outside_0_1(small, fraction):
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_validation(small["x_train"], small["y_train"], fraction=fraction)


def test_split_validation_rejects_too_few_or_unpaired(small):
    x, y = small["x_train"], small["y_train"]
    with pytest.raises(ValueError, match="leaves no data"):
        split_validation(x[:10], y[:10], fraction=0.01)
    with pytest.raises(ValueError, match="x holds 1000 examples but y holds 999 labels"):
        split_validation(x, y[:999])


# --- bad paths -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nowhere", "nowhere.npz", "nowhere.csv"])
def test_missing_file_or_directory(tmp_path, name):
    with raises(tmp_path / name, "no such file or directory"):
        load_mnist(tmp_path / name)


def test_missing_source_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "gone"))
    with raises(tmp_path / "gone", "no such file or directory"):
        load_mnist()


def test_not_an_mnist_source(tmp_path):
    path = tmp_path / "digits.txt"
    path.write_text("5,0,0\n")
    with raises(path, "not an MNIST source"):
        load_mnist(path)


# --- bad IDX -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(IDX_NAMES))
def test_idx_dir_missing_one_file(small_dir, key):
    idx_file(small_dir, key).unlink()
    with raises(small_dir, f"missing {IDX_NAMES[key]}"):
        load_mnist(small_dir)


def test_idx_dir_empty(tmp_path):
    with raises(tmp_path, "missing train-images-idx3-ubyte"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("key", ["x_train", "y_test"])
def test_idx_wrong_magic(small_dir, small, key):
    path = idx_file(small_dir, key)
    path.write_bytes(gzip.compress(idx_bytes(small[key], magic=2050)))
    with raises(path, "wrong IDX magic number 2050"):
        load_mnist(small_dir)


def test_idx_images_and_labels_swapped(small_dir, small):
    path = idx_file(small_dir, "y_train")
    path.write_bytes(gzip.compress(idx_bytes(small["x_train"])))
    with raises(path, "holds images, expected labels"):
        load_mnist(small_dir)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
@pytest.mark.parametrize("key", ["x_train", "y_train", "x_test", "y_test"])
def test_idx_truncated(tmp_path, small, key, gz):
    directory = write_idx_dir(tmp_path / "d", small, gz=gz)
    path = idx_file(directory, key, gz)
    raw = idx_bytes(small[key])[:-7]
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with raises(path, r"truncated IDX file, \d+ bytes where the header promises \d+"):
        load_mnist(directory)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_idx_truncated_header(small_dir, gz):
    path = idx_file(small_dir, "x_test", gz)
    idx_file(small_dir, "x_test").unlink()
    raw = idx_bytes(np.zeros((1, 28, 28), np.uint8))[:12]
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with raises(path, "truncated IDX header"):
        load_mnist(small_dir)


def test_idx_extra_bytes(small_dir, small):
    path = idx_file(small_dir, "y_train")
    path.write_bytes(gzip.compress(idx_bytes(small["y_train"]) + b"\0\0\0"))
    with raises(path, "3 unexpected bytes after the 1000 items"):
        load_mnist(small_dir)


def test_idx_not_28x28(small_dir):
    path = idx_file(small_dir, "x_test")
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((200, 16, 16), np.uint8))))
    with raises(path, "images are 16x16, MNIST images are 28x28"):
        load_mnist(small_dir)


@pytest.mark.parametrize("where", ["first-block", "middle"])
def test_idx_corrupt_gzip_data(small_dir, where):
    """Bytes flipped inside the deflate stream, the gzip header intact.

    Right after gzip.compress's 10-byte header, gzip reports it as a zlib.error (not an OSError); in the
    middle here, as a CRC mismatch (gzip.BadGzipFile).
    """
    path = idx_file(small_dir, "x_train")
    raw = bytearray(path.read_bytes())
    start = 10 if where == "first-block" else len(raw) // 2
    raw[start : start + 64] = bytes(255 - b for b in raw[start : start + 64])
    path.write_bytes(bytes(raw))
    with raises(path, "corrupt or truncated gzip data"):
        load_mnist(small_dir)


def test_idx_corrupt_gzip_checksum(small_dir):
    path = idx_file(small_dir, "y_test")
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # the CRC-32 of the trailer
    path.write_bytes(bytes(raw))
    with raises(path, "corrupt or truncated gzip data"):
        load_mnist(small_dir)


def test_idx_truncated_gzip(small_dir):
    path = idx_file(small_dir, "x_test")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with raises(path, "corrupt or truncated gzip data"):
        load_mnist(small_dir)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_idx_empty_file(small_dir, gz):
    path = idx_file(small_dir, "y_train", gz)
    idx_file(small_dir, "y_train").unlink()
    path.write_bytes(gzip.compress(b"") if gz else b"")
    with raises(path, "empty file"):
        load_mnist(small_dir)


def test_idx_zero_images(small_dir):
    for key in ("x_test", "y_test"):
        empty = np.zeros((0, 28, 28) if key == "x_test" else (0,), np.uint8)
        idx_file(small_dir, key).write_bytes(gzip.compress(idx_bytes(empty)))
    with raises(idx_file(small_dir, "x_test"), "holds no images"):
        load_mnist(small_dir)


def test_idx_image_and_label_counts_differ(small_dir, small):
    labels = idx_file(small_dir, "y_test")
    labels.write_bytes(gzip.compress(idx_bytes(small["y_test"][:199])))
    with raises(idx_file(small_dir, "x_test"), f"holds 200 images but {labels.name} holds 199 labels"):
        load_mnist(small_dir)


def test_idx_label_out_of_range(small_dir, small):
    path = idx_file(small_dir, "y_train")
    y = small["y_train"].copy()
    y[7] = 10
    path.write_bytes(gzip.compress(idx_bytes(y)))
    with raises(path, "label 10 at index 7 is not a digit 0-9"):
        load_mnist(small_dir)


# --- bad npz -----------------------------------------------------------------------------------------------------


def test_npz_empty_file(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"")
    with raises(path, "empty file"):
        load_mnist(path)


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("x_train,y_train\n")
    with raises(path, "not a readable .npz file"):
        load_mnist(path)


def test_npz_holding_one_array(tmp_path, small):
    path = tmp_path / "mnist.npz"
    with open(path, "wb") as f:
        np.save(f, small["x_train"])
    with raises(path, "holds a single array"):
        load_mnist(path)


def test_npz_missing_arrays(tmp_path, small):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=small["x_train"], y_train=small["y_train"], x_test=small["x_test"])
    with raises(path, "missing arrays y_test"):
        load_mnist(path)


@pytest.mark.parametrize(
    ("key", "change", "reason"),
    [
        ("x_train", lambda a: a.reshape(len(a), 784), r"x_train has shape \(1000, 784\), expected \(N, 28, 28\)"),
        ("x_test", lambda a: a[:, :27, :], r"x_test has shape \(200, 27, 28\)"),
        ("y_train", lambda a: a.reshape(-1, 1), r"y_train has shape \(1000, 1\), expected \(N,\)"),
        ("y_test", lambda a: a[:150], "x_test holds 200 images but y_test holds 150 labels"),
        ("x_train", lambda a: a[:0], "x_train is empty"),
        (
            "x_train",
            lambda a: a.astype(np.float32) / 255,
            r"x_train\[0, \d+, \d+\] is 0\.\d+; pixels must be whole numbers 0-255",
        ),
        ("x_test", lambda a: a.astype(np.int16) + 1, r"x_test\[.*\] is 256; pixels must be whole numbers 0-255"),
        ("y_train", lambda a: a.astype(np.int64) - 1, r"y_train\[.*\] is -1; labels must be whole numbers 0-9"),
        ("y_test", lambda a: np.where(a == 0, 12, a), r"y_test\[.*\] is 12; labels must be whole numbers 0-9"),
        ("y_test", lambda a: a.astype(str), "y_test has dtype <U"),
    ],
    ids=["flat", "27-rows", "2d-labels", "counts", "empty", "float-0-1", "pixel-256", "label-minus-1",
         "label-12", "strings"],
)
def test_npz_wrong_arrays(tmp_path, small, key, change, reason):
    path = tmp_path / "mnist.npz"
    arrays = dict(small)
    arrays[key] = change(small[key])
    if key == "x_train" and len(arrays[key]) == 0:
        arrays["y_train"] = small["y_train"][:0]
    np.savez(path, **arrays)
    with raises(path, reason):
        load_mnist(path)


# --- bad CSV -------------------------------------------------------------------------------------------------------


def test_csv_empty_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"")
    with raises(path, "empty file"):
        load_mnist(path)


def test_csv_header_without_rows(tmp_path):
    path = write_lines(tmp_path / "train.csv", [TRAIN_HEADER])
    with raises(path, "no data rows after the header"):
        load_mnist(path)


def test_csv_without_header(tmp_path, train_csv):
    path = write_lines(tmp_path / "noheader.csv", csv_lines(train_csv)[1:])
    with raises(path, "no header row"):
        load_mnist(path)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (",".join(["label", *PIXEL_COLUMNS[:-1]]), r"header has 784 columns, expected 785 \('label' and 784 pixel"),
        (",".join(["label", *PIXEL_COLUMNS, "extra"]), "header has 786 columns, expected 785"),
    ],
    ids=["too-few", "too-many"],
)
def test_csv_header_wrong_column_count(train_csv, header, reason):
    lines = csv_lines(train_csv)
    write_lines(train_csv, [header, *lines[1:]])
    with raises(train_csv, reason):
        load_mnist(train_csv)


@pytest.mark.parametrize("row", [2, 5, 601], ids=["first-row", "row-5", "last-row"])
@pytest.mark.parametrize(
    ("edit", "fields", "reason"),
    [
        (lambda line: line + ",0", 786, "too many"),
        (lambda line: line + ",", 786, "too many"),  # a trailing comma
        (lambda line: line.rsplit(",", 1)[0], 784, "too few"),
        (lambda line: ",".join(line.split(",")[:100]), 100, "too few"),
    ],
    ids=["extra-field", "trailing-comma", "one-short", "cut-short"],
)
def test_csv_row_wrong_field_count(train_csv, row, edit, fields, reason):
    """pandas would pad a short row with empty cells and take an over-long first row's label as the index."""
    lines = csv_lines(train_csv)
    lines[row - 1] = edit(lines[row - 1])
    write_lines(train_csv, lines)
    with raises(train_csv, rf"row {row} has {fields} fields, expected 785 \({reason}\)"):
        load_mnist(train_csv)


def test_csv_test_file_row_wrong_field_count(tmp_path, mnist):
    path = write_csv(tmp_path / "test.csv", mnist.x_test[:50])
    lines = csv_lines(path)
    lines[9] += ",0"
    write_lines(path, lines)
    with raises(path, r"row 10 has 785 fields, expected 784 \(too many\)"):
        load_kaggle_csv(path)


def set_cell(path: Path, row: int, column: int, value: str) -> None:
    """Put ``value`` in ``column`` (0 = the first) of file line ``row`` (1 = the header)."""
    lines = csv_lines(path)
    cells = lines[row - 1].split(",")
    cells[column] = value
    lines[row - 1] = ",".join(cells)
    write_lines(path, lines)


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        (4, 18, "abc", r"row 4, column 'pixel17': 'abc' is not a number"),
        (7, 0, "seven", r"row 7, column 'label': 'seven' is not a number"),
        (3, 784, "", r"row 3, column 'pixel783': '' is not a number"),
        (599, 1, "nan", r"row 599, column 'pixel0': 'nan' is not a number"),
        (300, 400, "0x10", r"row 300, column 'pixel399': '0x10' is not a number"),
        (3, 0, "10", r"row 3, column 'label': 10 is not a digit 0-9"),
        (6, 0, "-1", r"row 6, column 'label': -1 is not a digit 0-9"),
        (6, 0, "2.5", r"row 6, column 'label': 2.5 is not a digit 0-9"),
        (2, 301, "256", r"row 2, column 'pixel300': 256 is not a whole number in 0-255"),
        (9, 12, "-1", r"row 9, column 'pixel11': -1 is not a whole number in 0-255"),
        (600, 784, "12.5", r"row 600, column 'pixel783': 12.5 is not a whole number in 0-255"),
        (450, 5, "99999999999999999999", r"row 450, column 'pixel4': 99999999999999999999 is not a whole number"),
    ],
    ids=["text", "text-label", "empty-cell", "nan", "hex", "label-10", "label-minus-1", "label-2.5", "pixel-256",
         "pixel-minus-1", "pixel-12.5", "pixel-huge"],
)
def test_csv_bad_cell(train_csv, row, column, value, reason):
    set_cell(train_csv, row, column, value)
    with raises(train_csv, reason):
        load_mnist(train_csv)


def test_csv_whole_numbers_written_as_floats_are_accepted(tmp_path, mnist):
    path = write_csv(tmp_path / "train.csv", mnist.x_train[:20], mnist.y_train[:20])
    set_cell(path, 2, 0, "5.0")
    set_cell(path, 2, 400, "2.55e2")
    x, y = load_kaggle_csv(path)
    assert y[0] == 5 and x.reshape(20, -1)[0, 399] == 255


def test_csv_not_text(tmp_path, mnist_dir):
    path = tmp_path / "train.csv"
    path.write_bytes((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with raises(path, "not a text CSV file"):
        load_mnist(path)


def test_csv_is_a_directory(tmp_path):
    path = tmp_path / "folder.csv"
    path.mkdir()
    with raises(path, "not a file"):
        load_kaggle_csv(path)


def test_csv_too_few_rows_for_a_split(tmp_path, mnist):
    path = write_csv(tmp_path / "train.csv", mnist.x_train[:1], mnist.y_train[:1])
    with raises(path, "1 rows are too few to hold out a test set"):
        load_mnist(path)
    with raises(path, "too few for the tutorial's train/validation/test split"):
        load_mnist(path, csv_split="tutorial")


MEASURE_CSV_MEMORY = """
import resource, sys
import numpy as np, pandas
from mnist_core.data import load_kaggle_csv
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x, y = load_kaggle_csv(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(x), (after - before) * 1024)
"""


@pytest.mark.slow
def test_a_large_valid_csv_is_read_within_the_documented_memory_bound(tmp_path, mnist):
    """Kaggle's full train.csv size (42,000 rows, ~77 MB) from real MNIST; peak memory growth stays under the bound."""
    path = write_csv(tmp_path / "train.csv", mnist.x_train[:42_000], mnist.y_train[:42_000])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", MEASURE_CSV_MEMORY, str(path)], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    rows, growth = int(out[0]), int(out[1])
    assert rows == 42_000
    assert growth <= data_mod.CSV_MEMORY_FACTOR * path.stat().st_size, f"{growth / 2**20:.0f} MB"


MEASURE_CSV_COST = """
import resource, sys
import pandas
from mnist_core.data import DataError, load_kaggle_csv
before = resource.getrusage(resource.RUSAGE_SELF)
try:
    message = f"{len(load_kaggle_csv(sys.argv[1])[0])} rows"
except DataError as exc:
    message = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
print((after.ru_maxrss - before.ru_maxrss) * 1024, cpu, message)
"""


@pytest.mark.parametrize(
    ("content", "outcome"),
    [
        (lambda head, row: head + row + b"\n" * (100 << 20), "1 rows"),  # 100 MB of blank lines: ~26 s before
        (lambda head, row: b"," * (60 << 20), r"header has 62914561 columns, expected 785"),  # 1 GB before
        (lambda head, row: head + b"," * (60 << 20), r"row 2 has 62914561 fields, expected 785 \(too many\)"),
        (lambda head, row: b"a" * (60 << 20), r"first line is 62,914,560 bytes, longer than a header"),
    ],
    ids=["newlines", "commas-header", "commas-row", "long-header"],
)
def test_a_hostile_csv_costs_at_most_seconds_and_the_memory_bound(tmp_path, content, outcome):
    """Read in a child process, which measures its own CPU time and peak memory growth."""
    header = ",".join(["label", *PIXEL_COLUMNS]).encode() + b"\n"
    path = tmp_path / "hostile.csv"
    path.write_bytes(content(header, b"7," + b",".join([b"0"] * 784) + b"\n"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", MEASURE_CSV_COST, str(path)], capture_output=True, text=True,
                         env=env, check=True, timeout=120).stdout.split(maxsplit=2)
    growth, cpu, message = int(out[0]), float(out[1]), out[2]
    assert re.search(outcome, message), message
    assert cpu < 5, f"{cpu:.1f} s of CPU"
    assert growth <= data_mod.CSV_MEMORY_FACTOR * path.stat().st_size, f"{growth / 2**20:.0f} MB"


# --- with_extra_training ---------------------------------------------------------------------------


def test_extra_training_images_join_the_training_set_only(mnist):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 30).astype(np.uint8)
    more = with_extra_training(mnist, x, y, [record("noise", 30)])
    assert len(more.x_train) == len(mnist.x_train) + 30
    np.testing.assert_array_equal(more.x_train[-30:], x)
    np.testing.assert_array_equal(more.y_train[-30:], y)
    assert more.x_test is mnist.x_test and more.y_test is mnist.y_test  # the test set is the source's
    assert (more.source, more.sha256) == (mnist.source, mnist.sha256)
    assert more.extra_source == "noise (30)" and len(more.extra_sha256) == 64
    other = with_extra_training(mnist, x, (y + 1) % 10, [record("relabelled", 30)])
    assert other.extra_sha256 != more.extra_sha256  # the checksum covers the labels too


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((3, 16, 16), np.uint8), np.zeros(3, np.uint8), "(N, 28, 28) uint8"),
    (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8), "(N, 28, 28) uint8"),
    (np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.uint8), "one label 0-9 per image"),
    (np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 10]), "one label 0-9 per image"),
])
def test_malformed_extra_training_data_is_refused(mnist, x, y, message):
    with pytest.raises(DataError, match=re.escape(message)):
        with_extra_training(mnist, x, y, [record("bad", len(x))])


def test_extra_training_data_is_added_once(mnist):
    x, y = np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8)
    with pytest.raises(DataError, match="already added"):
        with_extra_training(with_extra_training(mnist, x, y, [record("first", 2)]), x, y, [record("second", 2)])


def test_extra_training_records_must_count_the_images(mnist):
    x, y = np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8)
    with pytest.raises(DataError, match="add up to 3, not the 2 images"):
        with_extra_training(mnist, x, y, [record("a", 1), record("b", 2)])


def record(name: str, count: int):
    from mnist_core.sources import TrainingSource

    return TrainingSource(name, name, "", "0" * 64, count, 2)
