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

import csv
import gzip
import hashlib
import io
import os
import re
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnist_core.errors import first_line as _first_line

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
# Reading a CSV holds the file's bytes and the parsed arrays: measured peak growth
# is ~2.4x the file's size (186 MB for Kaggle's 77 MB train.csv); the bound we
# promise, and test, is 3x. The page refuses uploads above its limit before this.
CSV_MEMORY_FACTOR = 3
# Kaggle's header is 6,765 bytes; a first line longer than this is refused before it is decoded or split.
CSV_MAX_HEADER_BYTES = 100_000

# What keras.datasets.mnist.load_data() downloads, and the file's sha256 (Keras 3.15).
KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


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
    # Training images added to the source's (see with_extra_training): one record
    # (mnist_core.sources.TrainingSource) per part, and a digest of all of them.
    extra_sources: tuple = ()
    extra_sha256: str = ""

    @property
    def extra_source(self) -> str:
        """What was added to the training set, in words ("" when nothing was)."""
        return " + ".join(f"{s.name} ({s.count})" for s in self.extra_sources)

    def __repr__(self) -> str:
        val = "" if self.x_val is None else f", val={len(self.x_val)}"
        extra = f", extra={self.extra_source!r}" if self.extra_source else ""
        return f"MnistData(train={len(self.x_train)}{val}, test={len(self.x_test)}, source={self.source!r}{extra})"


def with_extra_training(data: MnistData, x: np.ndarray, y: np.ndarray, sources: list) -> MnistData:
    """``data`` with images ``x`` (N, 28, 28) uint8 and labels ``y`` added to its training set; the test set is kept.

    ``source`` and ``sha256`` still name the loaded source (and so its test set);
    ``extra_sources`` (the records ``sources``, whose counts add up to ``len(x)``)
    and ``extra_sha256`` name what was added.
    """
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or x.dtype != np.uint8:
        raise DataError(f"extra training images must be (N, 28, 28) uint8, got {x.shape} {x.dtype}")
    if len(x) != len(y) or len(y) == 0 or y.min() < 0 or y.max() > 9:
        raise DataError(f"extra training data needs one label 0-9 per image ({len(x)} images, {len(y)} labels)")
    if data.extra_sources:
        raise DataError(f"extra training data was already added ({data.extra_source})")
    if sum(s.count for s in sources) != len(x):
        raise DataError(f"the sources' counts add up to {sum(s.count for s in sources)}, not the {len(x)} images")
    digest = hashlib.sha256(x.tobytes())
    digest.update(y.astype(np.uint8).tobytes())
    return replace(
        data,
        x_train=np.concatenate([data.x_train, x]),
        y_train=np.concatenate([data.y_train, y.astype(np.uint8)]),
        extra_sources=tuple(sources),
        extra_sha256=digest.hexdigest(),
    )


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
    if csv_split not in ("holdout", "tutorial"):
        raise ValueError(f"csv_split must be 'holdout' or 'tutorial', got {csv_split!r}")
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
    if len(x) != len(y):
        raise ValueError(f"x holds {len(x)} examples but y holds {len(y)} labels")
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
    raw = read_bytes(path)
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
    # A copy, so the arrays are writable like those of every other source (frombuffer over bytes is read-only).
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when gzipped; DataError for a missing, empty, unreadable or corrupt file."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not raw:
        raise DataError(f"{path}: empty file")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; bad deflate data a zlib.error
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
        if len(arrays[images]) == 0:
            raise DataError(f"{paths[images]}: holds no images (its header declares a count of 0)")
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{paths[images]} holds {len(arrays[images])} images but "
                f"{paths[labels].name} holds {len(arrays[labels])} labels"
            )
        _check_labels(arrays[labels], paths[labels])
    return MnistData(**arrays, source=str(directory), sha256=_sha256_files(paths.values()))


# --- Keras npz and download -------------------------------------------------


def _load_npz(path: Path, source: str | None = None) -> MnistData:
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a .npy file renamed: np.load gives the array itself
            raise DataError(f"{path}: holds a single array, not an .npz archive of {', '.join(IDX_FILES)}")
        with npz:
            missing = [k for k in IDX_FILES if k not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {', '.join(missing)} (a Keras mnist.npz holds {', '.join(IDX_FILES)})"
                )
            arrays = {k: np.asarray(npz[k]) for k in IDX_FILES}
    except DataError:
        raise
    except Exception as exc:  # zipfile, pickle and format errors all mean "not a valid npz"
        raise DataError(f"{path}: not a readable .npz file ({_first_line(exc)})") from exc
    return _checked_arrays(arrays, path, source=source or str(path), sha256=_sha256_files([path]))


def _keras_cache_file() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps ``mnist.npz``, by Keras 3's own rules.

    Kept here rather than asked of Keras: its answer (``keras.src.backend.config.keras_home``) is
    private API, and importing Keras to ask costs ~3 s before any data is read.

    Keras' home is ``$KERAS_HOME`` when that variable is set, else ``~/.keras`` (``/tmp/.keras`` when the
    home directory is not writable); ``keras.utils.get_file`` caches in ``<home>/datasets``, or in
    ``/tmp/.keras/datasets`` when ``<home>`` is not writable. Keras reads ``KERAS_HOME`` once, when it is
    imported; this reads it at each call, so it also follows a change made after Keras was imported.
    """
    tmp = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    if "KERAS_HOME" in os.environ:
        home = os.path.expanduser(os.environ["KERAS_HOME"])
    else:
        user = os.path.expanduser("~")
        home = os.path.join(user if os.access(user, os.W_OK) else tmp, ".keras")
    if not home or (os.path.exists(home) and not os.access(home, os.W_OK)):
        home = os.path.join(tmp, ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def _load_keras_default() -> MnistData:
    """Keras' cached ``mnist.npz`` if there is one, else Keras' download of it (into the same cache)."""
    cached = _keras_cache_file()
    if cached.is_file():
        # Read directly: Keras would discard a cached file whose hash is not the official one and download
        # again; a readable, well-formed mnist.npz in the cache is used as it is (its sha256 is recorded).
        return _load_npz(cached, source=f"keras.datasets.mnist ({cached})")
    home = cached.parent.parent
    try:
        from keras.utils import get_file

        home.mkdir(parents=True, exist_ok=True)  # as Keras does on import, so get_file does not fall back to /tmp
        downloaded = get_file(
            "mnist.npz", origin=KERAS_MNIST_URL, file_hash=KERAS_MNIST_SHA256,
            cache_dir=str(home), cache_subdir="datasets",
        )
    except Exception as exc:
        raise DataError(
            f"no MNIST source given, none in Keras' cache ({cached}) and Keras could not download it "
            f"({_first_line(exc)}); pass --data PATH or set {ENV_VAR} to an MNIST directory, .npz or .csv"
        ) from exc
    return _load_npz(Path(downloaded), source=f"keras.datasets.mnist ({downloaded})")


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
        arrays[images] = _whole_numbers(x, 255, path, images, "pixels")
        arrays[labels] = _whole_numbers(y, 9, path, labels, "labels")
    return MnistData(**arrays, source=source, sha256=sha256)


def _whole_numbers(a: np.ndarray, top: int, path: Path, name: str, what: str) -> np.ndarray:
    """``a`` as uint8 if it holds whole numbers 0..top, else DataError (floats scaled to 0-1 included)."""
    if a.dtype == np.uint8 and top == 255:
        return a
    if a.dtype.kind not in "uif":
        raise DataError(f"{path}: {name} has dtype {a.dtype}, expected whole numbers 0-{top}")
    with np.errstate(invalid="ignore"):
        bad = ~((a >= 0) & (a <= top)) if a.dtype.kind != "f" else ~((a >= 0) & (a <= top) & (a == np.round(a)))
    if bad.any():
        i = np.unravel_index(int(np.flatnonzero(bad)[0]), a.shape)
        where = ", ".join(str(int(k)) for k in i)
        raise DataError(f"{path}: {name}[{where}] is {a[i].item()!r}; {what} must be whole numbers 0-{top}")
    return a.astype(np.uint8, copy=False)


# --- Kaggle CSV -----------------------------------------------------------


def load_kaggle_csv(path: str | os.PathLike, *, labelled: bool | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a Kaggle Digit Recognizer CSV: ``(images, labels)``.

    ``train.csv`` (``label`` then 784 pixel columns) gives labels; ``test.csv``
    (784 pixel columns only) gives ``labels=None``. ``labelled`` forces one
    format; by default the header decides. Error messages number rows as the
    file's lines (the header is row 1); empty lines are skipped.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file (expected a Kaggle-format .csv)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not raw:
        raise DataError(f"{path}: empty file")
    header = _read_csv_header(raw, path)
    has_label = header[0].lower() == "label"
    if labelled is True and not has_label:
        raise DataError(f"{path}: first column is {header[0]!r}, expected 'label' (Kaggle train.csv format)")
    if labelled is False and has_label:
        raise DataError(f"{path}: has a 'label' column; expected 784 pixel columns only (Kaggle test.csv format)")
    expected = N_PIXELS + (1 if has_label else 0)
    if len(header) != expected:
        kind = "'label' and 784 pixel columns" if has_label else "784 pixel columns"
        raise DataError(f"{path}: header has {len(header)} columns, expected {expected} ({kind})")
    # Check every row's field count first: pandas pads a short row with empty cells and, when the first
    # data row is one field longer than the header, silently takes its first column as the index.
    rows = _csv_rows(raw, path, expected)
    if not rows:
        raise DataError(f"{path}: no data rows after the header")

    # Fast path: pandas' C parser straight to uint8, which refuses anything but a whole number 0-255
    # (ValueError or OverflowError); on a refusal the rows of that chunk are re-read to name the cell.
    reader = pd.read_csv(
        io.BytesIO(raw), header=None, skiprows=1, dtype=np.uint8, na_filter=False,
        quoting=csv.QUOTE_NONE, chunksize=CSV_CHUNK_ROWS, engine="c",
    )
    chunks: list[np.ndarray] = []
    done = 0
    while True:
        try:
            chunk = next(reader)
        except StopIteration:
            break
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: malformed CSV ({_first_line(exc)})") from exc
        except (ValueError, OverflowError) as exc:
            _explain_bad_cell(raw, rows[done : done + CSV_CHUNK_ROWS], header, path, has_label, exc)
        values = chunk.to_numpy(dtype=np.uint8)
        chunks.append(values)
        done += len(values)
    if done != len(rows):
        raise DataError(f"{path}: malformed CSV (read {done} rows of the {len(rows)} the file holds)")
    data = np.concatenate(chunks)
    labels = None
    if has_label:
        labels = np.ascontiguousarray(data[:, 0])
        bad = np.flatnonzero(labels > 9)
        if len(bad):
            i = bad[0]
            raise DataError(f"{path}: row {rows[i][0]}, column {header[0]!r}: {labels[i]} is not a digit 0-9")
        data = data[:, 1:]
    x = np.ascontiguousarray(data).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return x, labels


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


def _read_csv_header(raw: bytes, path: Path) -> list[str]:
    end = raw.find(b"\n")
    # Counted before the line is split: a first line of 190 MB of commas, split into cells, peaked at 3.4 GB.
    length = len(raw) if end < 0 else end
    columns = raw.count(b",", 0, length) + 1
    if columns > N_PIXELS + 1:
        raise DataError(f"{path}: header has {columns} columns, expected 785 ('label' and 784 pixel columns)")
    if length > CSV_MAX_HEADER_BYTES:
        raise DataError(f"{path}: first line is {length:,} bytes, longer than a header of 785 column names "
                        f"may be ({CSV_MAX_HEADER_BYTES:,}); expected 'label,pixel0,...,pixel783'")
    try:
        line = (raw if end < 0 else raw[:end]).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text CSV file ({exc.reason} in the first line)") from exc
    if not line.strip():
        raise DataError(f"{path}: first line is empty, expected a header ('label,pixel0,...,pixel783')")
    cells = [c.strip() for c in line.rstrip("\r").split(",")]
    if all(_is_number(c) for c in cells):
        raise DataError(f"{path}: no header row; expected 'label,pixel0,...,pixel783' as the first line")
    return cells


# A data row: a line holding more than "\r"s (pandas skips empty lines, and takes "\r" for a line end too),
# from its first other byte. Found by the regex engine, so a file of blank lines costs no Python per line:
# 190 MB of newlines took 50 s in a Python loop over lines, ~1 s this way.
_CSV_ROW = re.compile(rb"[^\r\n][^\n]*")


def _csv_rows(raw: bytes, path: Path, expected: int) -> list[tuple[int, int, int]]:
    """``(line number, start, stop)`` of each data row, after checking that each has ``expected`` fields."""
    rows = []
    first = raw.find(b"\n")
    if first < 0:
        return rows
    line, counted = 1, first  # the line number of the newline at raw[counted]
    for match in _CSV_ROW.finditer(raw, first + 1):
        start, end = match.span()
        line += raw.count(b"\n", counted, start)
        counted = start
        stop = end - 1 if raw[end - 1] == 13 else end  # without a "\r" before the "\n"
        fields = raw.count(b",", start, stop) + 1
        if fields != expected:
            more = "too many" if fields > expected else "too few"
            raise DataError(f"{path}: row {line} has {fields} fields, expected {expected} ({more})")
        rows.append((line, start, stop))
    return rows


_NUMBER = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


def _explain_bad_cell(raw: bytes, rows, header: list[str], path: Path, has_label: bool, exc: Exception) -> None:
    """Raise a DataError naming the first cell of ``rows`` that is not a label 0-9 or a pixel 0-255."""
    for line, start, stop in rows:
        for c, cell in enumerate(raw[start:stop].split(b",")):
            text = cell.decode("utf-8", "replace")
            where = f"{path}: row {line}, column {header[c]!r}"
            if not _NUMBER.fullmatch(text):
                raise DataError(f"{where}: {text!r} is not a number") from exc
            value = float(text)
            if has_label and c == 0:
                if value not in range(10):
                    raise DataError(f"{where}: {text.strip()} is not a digit 0-9") from exc
            elif value not in range(256):
                raise DataError(f"{where}: {text.strip()} is not a whole number in 0-255") from exc
    first, last = rows[0][0], rows[-1][0]
    raise DataError(f"{path}: rows {first}-{last} hold a value that is not a whole number 0-255 ({_first_line(exc)})")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return cell.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


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

