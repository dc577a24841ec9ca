"""Load MNIST from the sources its users have.

One call, :func:`load_mnist`, returns the training and test images (uint8,
28x28, ink high on a 0 background) and labels from:

* a directory holding the four original IDX files, gzipped or not;
* Keras' ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``);
* a Kaggle Digit Recognizer ``train.csv`` (``label,pixel0,...,pixel783``);
* Keras' own cache and download, when no source is named.

The source is chosen by an explicit argument, else the ``MNIST_DATA``
environment variable, else Keras' default. Anything malformed raises
:class:`DataError` naming the file and what is wrong; nothing half-loaded is
ever returned.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "MNIST_DATA"
IMAGE_SIZE = 28
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

# The four files of the original distribution, by role. Mirrors differ in
# the separator before "idx" ("-" or "."), so both are accepted.
IDX_FILES = {
    "x_train": "train-images",
    "y_train": "train-labels",
    "x_test": "t10k-images",
    "y_test": "t10k-labels",
}

# The Keras tutorial's split of Kaggle's 42,000 rows: 35,000 / 5,000 / 2,000.
TUTORIAL_SPLIT = (35_000 / 42_000, 5_000 / 42_000)

CSV_CHUNK_ROWS = 5_000


class DataError(ValueError):
    """A data source is missing or malformed; the message says which file and why."""


@dataclass(frozen=True)
class MnistData:
    """Images (N, 28, 28) uint8 and labels (N,) uint8, plus where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __repr__(self) -> str:
        val = "" if self.x_val is None else f", val={len(self.x_val)}"
        return f"MnistData(train={len(self.x_train)}{val}, test={len(self.x_test)}, source={self.source!r})"


def resolve_source(source: str | os.PathLike | None = None) -> Path | None:
    """The source to load: the argument, else ``$MNIST_DATA``, else None (Keras' default)."""
    if source is not None and str(source) != "":
        return Path(source).expanduser()
    from_env = os.environ.get(ENV_VAR, "")
    return Path(from_env).expanduser() if from_env else None


def load_mnist(source: str | os.PathLike | None = None, *, csv_split: str = "holdout") -> MnistData:
    """Load MNIST training and test sets from ``source`` (see the module docstring).

    ``csv_split`` applies to a Kaggle CSV: ``"holdout"`` keeps the last sixth of
    the rows as the test set (MNIST's 60k/10k proportion); ``"tutorial"`` is the
    Keras tutorial's split, first 35,000 rows train, next 5,000 validation, the
    rest test (proportionally for files of another size).
    """
    path = resolve_source(source)
    if path is None:
        return _load_keras_default()
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (expected an MNIST directory, .npz or .csv)")
    if path.is_dir():
        return _load_idx_dir(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_labelled_csv(path, csv_split)
    raise DataError(
        f"{path}: not an MNIST source; give a directory of the four IDX files, "
        "a Keras mnist.npz or a Kaggle-format .csv"
    )


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off a seeded random ``fraction`` for validation: ``x_train, y_train, x_val, y_val``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    n_val = int(round(len(x) * fraction))
    if n_val < 1 or n_val >= len(x):
        raise ValueError(f"a validation fraction of {fraction} leaves no data on one side of {len(x)} examples")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


# --- IDX ------------------------------------------------------------------


def find_idx_file(directory: Path, stem: str) -> Path:
    """The IDX file for ``stem`` in ``directory``, gzipped or not."""
    kind = "idx3" if "images" in stem else "idx1"
    for sep in ("-", "."):
        for ext in (".gz", ""):
            candidate = directory / f"{stem}{sep}{kind}-ubyte{ext}"
            if candidate.is_file():
                return candidate
    raise DataError(f"{directory}: missing {stem}-{kind}-ubyte[.gz] (an MNIST directory holds all four IDX files)")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (images magic 2051 or labels magic 2049) into a uint8 array."""
    raw = _read_bytes(path)
    if len(raw) < 8:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, the header alone is 8)")
    magic = int.from_bytes(raw[0:4], "big")
    if magic == IDX_IMAGES_MAGIC:
        header = 16
        if len(raw) < header:
            raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, expected 16)")
        count, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
        if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{path}: images are {rows}x{cols}, MNIST images are 28x28")
        shape: tuple[int, ...] = (count, rows, cols)
    elif magic == IDX_LABELS_MAGIC:
        header = 8
        count = int.from_bytes(raw[4:8], "big")
        shape = (count,)
    else:
        raise DataError(
            f"{path}: wrong IDX magic number {magic} (expected {IDX_IMAGES_MAGIC} for images "
            f"or {IDX_LABELS_MAGIC} for labels)"
        )
    expected = header + int(np.prod(shape))
    if len(raw) < expected:
        raise DataError(f"{path}: truncated IDX file, {len(raw)} bytes where the header promises {expected}")
    if len(raw) > expected:
        raise DataError(f"{path}: {len(raw) - expected} unexpected bytes after the {count} items the header declares")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not raw:
        raise DataError(f"{path}: empty file")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
        if not raw:
            raise DataError(f"{path}: empty file once decompressed")
    return raw


def _load_idx_dir(directory: Path) -> MnistData:
    paths = {key: find_idx_file(directory, stem) for key, stem in IDX_FILES.items()}
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for images, labels in (("x_train", "y_train"), ("x_test", "y_test")):
        if arrays[images].ndim != 3:
            raise DataError(f"{paths[images]}: holds labels, expected images (magic {IDX_IMAGES_MAGIC})")
        if arrays[labels].ndim != 1:
            raise DataError(f"{paths[labels]}: holds images, expected labels (magic {IDX_LABELS_MAGIC})")
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{paths[images]} holds {len(arrays[images])} images but "
                f"{paths[labels].name} holds {len(arrays[labels])} labels"
            )
        _check_labels(arrays[labels], paths[labels])
    return MnistData(**arrays, source=str(directory), sha256=_sha256_files(paths.values()))


# --- Keras npz and download -------------------------------------------------


def _load_npz(path: Path) -> MnistData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in IDX_FILES if k not in npz.files]
            if missing:
                raise DataError(f"{path}: missing arrays {', '.join(missing)} (a Keras mnist.npz holds {', '.join(IDX_FILES)})")
            arrays = {k: np.asarray(npz[k]) for k in IDX_FILES}
    except DataError:
        raise
    except Exception as exc:  # zipfile, pickle and format errors all mean "not a valid npz"
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    return _checked_arrays(arrays, path, source=str(path), sha256=_sha256_files([path]))


def _load_keras_default() -> MnistData:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:
        raise DataError(
            "no MNIST source given and Keras could not load or download it "
            f"({exc}); pass --data PATH or set {ENV_VAR} to an MNIST directory, .npz or .csv"
        ) from exc
    cache = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    npz = cache / "datasets" / "mnist.npz"
    sha = _sha256_files([npz]) if npz.is_file() else _sha256_arrays(arrays)
    return _checked_arrays(arrays, npz, source="keras.datasets.mnist", sha256=sha)


def _checked_arrays(arrays: dict[str, np.ndarray], path: Path, source: str, sha256: str) -> MnistData:
    for images, labels in (("x_train", "y_train"), ("x_test", "y_test")):
        x, y = arrays[images], arrays[labels]
        if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{path}: {images} has shape {x.shape}, expected (N, 28, 28)")
        if y.ndim != 1:
            raise DataError(f"{path}: {labels} has shape {y.shape}, expected (N,)")
        if len(x) != len(y):
            raise DataError(f"{path}: {images} holds {len(x)} images but {labels} holds {len(y)} labels")
        if len(x) == 0:
            raise DataError(f"{path}: {images} is empty")
        if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{path}: {images} has pixels outside 0-255")
        _check_labels(y, path)
        arrays[images] = x.astype(np.uint8, copy=False)
        arrays[labels] = y.astype(np.uint8, copy=False)
    return MnistData(**arrays, source=source, sha256=sha256)


# --- Kaggle CSV -----------------------------------------------------------


def load_kaggle_csv(path: str | os.PathLike, *, labelled: bool | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a Kaggle Digit Recognizer CSV: ``(images, labels)``.

    ``train.csv`` (``label`` then 784 pixel columns) gives labels; ``test.csv``
    (784 pixel columns only) gives ``labels=None``. ``labelled`` forces one
    format; by default the header decides.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    header = _read_csv_header(path)
    has_label = header[0].strip().lower() == "label"
    if labelled is True and not has_label:
        raise DataError(f"{path}: first column is {header[0]!r}, expected 'label' (Kaggle train.csv format)")
    if labelled is False and has_label:
        raise DataError(f"{path}: has a 'label' column; expected 784 pixel columns only (Kaggle test.csv format)")
    expected = N_PIXELS + (1 if has_label else 0)
    if len(header) != expected:
        kind = "'label' and 784 pixel columns" if has_label else "784 pixel columns"
        raise DataError(f"{path}: header has {len(header)} columns, expected {expected} ({kind})")

    images, labels = [], []
    first_row = 2  # row 1 is the header
    try:
        reader = pd.read_csv(path, dtype=str, chunksize=CSV_CHUNK_ROWS, header=0, na_filter=False)
        for chunk in reader:
            values = _numeric_chunk(chunk, path, first_row, expected)
            if has_label:
                labels.append(_chunk_labels(values[:, 0], path, first_row))
                values = values[:, 1:]
            images.append(_chunk_pixels(values, path, first_row, 1 if has_label else 0))
            first_row += len(chunk)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({_first_line(exc)})") from exc
    if not images or sum(len(x) for x in images) == 0:
        raise DataError(f"{path}: no data rows after the header")
    x = np.concatenate(images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    y = np.concatenate(labels) if has_label else None
    return x, y


def _load_labelled_csv(path: Path, split: str) -> MnistData:
    if split not in ("holdout", "tutorial"):
        raise ValueError(f"csv_split must be 'holdout' or 'tutorial', got {split!r}")
    x, y = load_kaggle_csv(path, labelled=True)
    n = len(x)
    sha = _sha256_files([path])
    if split == "holdout":
        n_train = n - max(1, n // 6)
        if n_train < 1:
            raise DataError(f"{path}: {n} rows are too few to hold out a test set")
        return MnistData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], source=str(path), sha256=sha)
    n_train = int(round(n * TUTORIAL_SPLIT[0]))
    n_val = int(round(n * TUTORIAL_SPLIT[1]))
    if n_train < 1 or n_val < 1 or n_train + n_val >= n:
        raise DataError(f"{path}: {n} rows are too few for the tutorial's train/validation/test split")
    end_val = n_train + n_val
    return MnistData(
        x[:n_train], y[:n_train], x[end_val:], y[end_val:], source=str(path), sha256=sha,
        x_val=x[n_train:end_val], y_val=y[n_train:end_val],
    )


def _read_csv_header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            line = f.readline()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text CSV file ({exc.reason})") from exc
    if not line.strip():
        raise DataError(f"{path}: first line is empty, expected a header ('label,pixel0,...,pixel783')")
    cells = line.rstrip("\r\n").split(",")
    if all(_is_number(c) for c in cells):
        raise DataError(f"{path}: no header row; expected 'label,pixel0,...,pixel783' as the first line")
    return cells


def _numeric_chunk(chunk, path: Path, first_row: int, n_cols: int) -> np.ndarray:
    if chunk.shape[1] != n_cols:
        raise DataError(f"{path}: {chunk.shape[1]} columns, expected {n_cols}")
    raw = chunk.to_numpy()
    try:
        return raw.astype(np.float64)
    except ValueError:
        pass
    for r, row in enumerate(raw):
        for c, cell in enumerate(row):
            if not _is_number(cell):
                column = chunk.columns[c]
                raise DataError(f"{path}: row {first_row + r}, column {column!r}: {cell!r} is not a number")
    raise DataError(f"{path}: rows {first_row}-{first_row + len(raw) - 1} hold a value that is not a number")


def _chunk_labels(labels: np.ndarray, path: Path, first_row: int) -> np.ndarray:
    bad = np.flatnonzero((labels < 0) | (labels > 9) | (labels != np.round(labels)))
    if len(bad):
        i = bad[0]
        raise DataError(f"{path}: row {first_row + i}: label {labels[i]:g} is not a digit 0-9")
    return labels.astype(np.uint8)


def _chunk_pixels(pixels: np.ndarray, path: Path, first_row: int, col_offset: int) -> np.ndarray:
    bad = np.argwhere((pixels < 0) | (pixels > 255) | (pixels != np.round(pixels)))
    if len(bad):
        r, c = bad[0]
        raise DataError(
            f"{path}: row {first_row + r}, column pixel{c}: {pixels[r, c]:g} is not a whole number in 0-255"
        )
    return pixels.astype(np.uint8).reshape(-1, N_PIXELS)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return cell.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_labels(labels: np.ndarray, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        bad = int(np.flatnonzero((labels < 0) | (labels > 9))[0])
        raise DataError(f"{path}: label {labels[bad]} at index {bad} is not a digit 0-9")


# --- checksums --------------------------------------------------------------


def _sha256_files(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: Path(p).name):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _sha256_arrays(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()
