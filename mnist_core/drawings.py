"""A store of the drawings users labelled: the canvas' PNG and a small record each, per owner.

Layout of the folder (default: :func:`default_drawings_dir`)::

    DIR/OWNER/images/DIGIT/ID.png    the canvas' PNG as the page received it, by its label
    DIR/OWNER/records/ID.json        label, predicted digit, model, created, probabilities

``OWNER`` is an owner id (:func:`mnist_core.identity.owner_of` a personal key), so
one user's drawings never mix with another's, and ``DIR/OWNER/images`` is by itself
a class-folder data set (the layout of Keras' ``image_dataset_from_directory``),
which ``python -m mnist_core finetune --drawings`` reads directly. The records
live outside it, so nothing but labelled PNGs is ever in there.

Every change happens under an ``flock`` on ``DIR/.lock`` (shared by every process
using the folder), and every file is written under a temporary name in
``DIR/OWNER/.tmp`` and renamed into place: an add writes the record first and the
image last, so a drawing exists once its image is in place and a killed add leaves
at most a record without an image, which is never listed and is removed at the
next change. A delete removes the image first, for the same reason. Limits
(:data:`MAX_PER_OWNER`, :data:`MAX_TOTAL`, :data:`MAX_TOTAL_MB`,
:data:`MAX_PNG_BYTES`, :data:`MAX_SIDE`) are checked before anything is written
and refused with a :class:`DrawingLimitError` that says which.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnist_core.identity import OWNER_CHARACTERS, is_owner
from mnist_core.preprocessing import read_png, to_mnist

ENV_VAR = "MNIST_DRAWINGS_DIR"
# One user may keep this many drawings: 50 of each digit, ten times what a fine-tune needs to learn a style.
MAX_PER_OWNER = 500
# The whole folder, every user together, holds at most this many drawings and this many MB of PNGs.
MAX_TOTAL = 20_000
MAX_TOTAL_MB = 1_000
# One drawing's PNG: the page's 300-pixel canvas at a device pixel ratio of 4 is 1200x1200, and its PNGs
# are 5-60 KB; a PNG larger than these is not a drawing from the canvas.
MAX_PNG_BYTES = 2**20
MAX_SIDE = 1200
N_CLASSES = 10
LOCK_FILE = ".lock"
_ID = re.compile(r"[0-9]{8}T[0-9]{6}[0-9]{6}-[0-9a-f]{8}")  # UTC time to the microsecond, then 32 random bits


class DrawingLimitError(ValueError):
    """A drawing is refused because a limit of the store would be exceeded; the message says which."""


@dataclass(frozen=True)
class Drawing:
    """One labelled drawing: what the user said it is, what the model read, and when."""

    id: str
    label: int  # the digit the user says it is
    predicted: int | None  # what the model read (None: nothing read)
    model: str  # the model that read it
    created: str  # ISO 8601, UTC
    probabilities: tuple[float, ...] | None = None  # the model's ten, if given

    @property
    def corrected(self) -> bool:
        """True when the user's label is not what the model read."""
        return self.predicted != self.label

    def as_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "predicted": self.predicted, "model": self.model,
                "created": self.created,
                "probabilities": None if self.probabilities is None else list(self.probabilities)}


def default_drawings_dir() -> Path:
    """``$MNIST_DRAWINGS_DIR`` if set, else the ``drawings/`` folder beside the package's ``models/`` (git-ignored)."""
    from_env = os.environ.get(ENV_VAR, "")
    return Path(from_env).expanduser() if from_env else Path(__file__).resolve().parent.parent / "drawings"


class DrawingStore:
    """The labelled drawings of every user, in one folder (default: :func:`default_drawings_dir`)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_drawings_dir()

    # --- reading ---------------------------------------------------------------------------

    def images_dir(self, owner: str) -> Path:
        """``DIR/OWNER/images``: the owner's drawings as a class-folder data set (``DIGIT/ID.png``, a folder for
        each digit 0-9); it does not exist before the owner's first drawing."""
        return self._owner_dir(owner) / "images"

    def list(self, owner: str) -> list[Drawing]:
        """The owner's drawings, newest first."""
        records = self._owner_dir(owner) / "records"
        if not records.is_dir():
            return []
        found = []
        for path in records.iterdir():
            if not (path.suffix == ".json" and _ID.fullmatch(path.stem)):
                continue
            drawing = _read_record(path)
            if drawing is not None and self._image_path(owner, drawing).is_file():
                found.append(drawing)
        return sorted(found, key=lambda d: d.id, reverse=True)  # ids begin with their time

    def counts(self, owner: str) -> list[int]:
        """How many drawings the owner labelled as each digit 0-9."""
        counts = [0] * N_CLASSES
        for drawing in self.list(owner):
            counts[drawing.label] += 1
        return counts

    def image(self, owner: str, drawing_id: str) -> bytes:
        """Drawing ``drawing_id``'s PNG; KeyError if the owner has no such drawing."""
        return self._image_path(owner, self._get(owner, drawing_id)).read_bytes()

    def zip_bytes(self, owner: str) -> bytes:
        """The owner's drawings as a zip in the class-folder layout: ``DIGIT/ID.png``, as ``images_dir`` holds them
        (all ten digit folders, even empty ones, so that Keras numbers the classes as the digits)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for digit in range(N_CLASSES):  # every digit's folder, as images_dir has them (see add)
                archive.writestr(f"{digit}/", b"")
            for drawing in self.list(owner):
                archive.writestr(f"{drawing.label}/{drawing.id}.png", self._image_path(owner, drawing).read_bytes())
        return buffer.getvalue()

    def csv_bytes(self, owner: str) -> bytes:
        """The owner's drawings in Kaggle's ``train.csv`` format: ``label,pixel0..pixel783``, one row each.

        Each drawing is normalised to 28x28 exactly as the page reads the canvas (:func:`read_png`, then
        :func:`~mnist_core.preprocessing.to_mnist`); newest first, as :meth:`list` gives them.
        """
        from mnist_core.data import N_PIXELS

        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["label", *(f"pixel{i}" for i in range(N_PIXELS))])
        for drawing in self.list(owner):
            image = to_mnist(_decode(self._image_path(owner, drawing).read_bytes(), drawing.id)).image
            writer.writerow([drawing.label, *image.reshape(-1).tolist()])
        return text.getvalue().encode("ascii")

    # --- changing --------------------------------------------------------------------------

    def add(self, owner: str, png: bytes, label: int, predicted: int | None = None, model: str = "",
            probabilities=None) -> Drawing:
        """Keep a labelled drawing: ``png``, the canvas' PNG, as the user's digit ``label`` (0-9).

        ``predicted``: what ``model`` read (0-9 or None); ``probabilities``: its ten, or None. Raises
        ValueError for a bad argument or a PNG that is not a readable drawing, :class:`DrawingLimitError`
        when a limit would be exceeded; either way nothing is written.
        """
        owner = _checked_owner(owner)
        label = _checked_digit(label, "label")
        predicted = None if predicted is None else _checked_digit(predicted, "predicted")
        if not isinstance(model, str) or len(model) > 64:
            raise ValueError(f"model must be a model's name (text of at most 64 characters), got {model!r:.80}")
        probabilities = _checked_probabilities(probabilities)
        if not isinstance(png, (bytes, bytearray)):
            raise ValueError(f"png must be the PNG's bytes, got {type(png).__name__}")
        png = bytes(png)
        if len(png) > MAX_PNG_BYTES:
            raise DrawingLimitError(f"the drawing's PNG is {len(png):,} bytes, more than the {MAX_PNG_BYTES:,} "
                                    "a drawing may be; not kept")
        if to_mnist(_decode(png, "the drawing")).blank:  # the header checked before decoding (read_png)
            raise ValueError("nothing is drawn in this image (blank, or only a speck); not kept")

        now = datetime.now(timezone.utc)
        drawing = Drawing(f"{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}", label, predicted, model,
                          now.isoformat(timespec="seconds"), probabilities)
        owner_dir = self._owner_dir(owner)
        with self._locked():
            self._remove_unfinished(owner)
            self._check_room(owner, len(png))
            record = owner_dir / "records" / f"{drawing.id}.json"
            image = self._image_path(owner, drawing)
            written = []
            try:
                # Every digit's folder, even empty: Keras numbers the classes of a class folder by its
                # subfolders, so with only 3/ and 7/ there, 3s would be class 0.
                for folder in (record.parent, owner_dir / ".tmp",
                               *(image.parent.parent / str(d) for d in range(N_CLASSES))):
                    folder.mkdir(parents=True, exist_ok=True)
                temporary_record = self._temporary(owner, ".json", json.dumps(drawing.as_dict()).encode(), written)
                temporary_image = self._temporary(owner, ".png", png, written)
                os.replace(temporary_record, record)
                os.replace(temporary_image, image)  # from here on, the drawing exists
            except BaseException:
                record.unlink(missing_ok=True)  # only ever a record whose image never arrived
                raise
            finally:
                for path in written:
                    path.unlink(missing_ok=True)
        return drawing

    def delete(self, owner: str, drawing_id: str) -> None:
        """Delete one of the owner's drawings; KeyError if the owner has no such drawing."""
        with self._locked():
            drawing = self._get(owner, drawing_id)
            self._image_path(owner, drawing).unlink(missing_ok=True)  # first: the drawing is gone
            (self._owner_dir(owner) / "records" / f"{drawing.id}.json").unlink(missing_ok=True)

    def delete_all(self, owner: str) -> int:
        """Delete every drawing of the owner (their whole folder); returns how many there were."""
        owner_dir = self._owner_dir(owner)
        with self._locked():
            count = len(self.list(owner))
            if owner_dir.exists():
                # Renamed first, in one step, so that a killed delete never leaves half an owner's folder.
                doomed = self.directory / f".deleted-{owner}-{secrets.token_hex(4)}"
                os.replace(owner_dir, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
        return count

    # --- inside ----------------------------------------------------------------------------

    def _owner_dir(self, owner: str) -> Path:
        return self.directory / _checked_owner(owner)

    def _image_path(self, owner: str, drawing: Drawing) -> Path:
        return self.images_dir(owner) / str(drawing.label) / f"{drawing.id}.png"

    def _get(self, owner: str, drawing_id: str) -> Drawing:
        if not isinstance(drawing_id, str) or not _ID.fullmatch(drawing_id):
            raise KeyError(f"{drawing_id!r:.80} is not a drawing id (as DrawingStore.add gives them)")
        drawing = _read_record(self._owner_dir(owner) / "records" / f"{drawing_id}.json")
        if drawing is None or not self._image_path(owner, drawing).is_file():
            raise KeyError(f"no drawing {drawing_id} among owner {owner}'s")
        return drawing

    def _check_room(self, owner: str, size: int) -> None:
        """Raise DrawingLimitError if one more drawing of ``size`` bytes would exceed a limit."""
        mine = len(self.list(owner))
        if mine >= MAX_PER_OWNER:
            raise DrawingLimitError(f"you have {mine} drawings, the most one user may keep ({MAX_PER_OWNER}); "
                                    "delete some first")
        total, total_bytes = 0, 0
        for owner_dir in self.directory.iterdir() if self.directory.is_dir() else ():
            if is_owner(owner_dir.name) and (owner_dir / "images").is_dir():
                for image in (owner_dir / "images").glob("[0-9]/*.png"):
                    total += 1
                    total_bytes += image.stat().st_size
        if total >= MAX_TOTAL or total_bytes + size > MAX_TOTAL_MB * 2**20:
            raise DrawingLimitError(f"the drawings folder is full ({total:,} drawings, {total_bytes / 2**20:,.1f} MB; "
                                    f"at most {MAX_TOTAL:,} drawings and {MAX_TOTAL_MB:,} MB for all users); "
                                    "not kept")

    def _remove_unfinished(self, owner: str) -> None:
        """Remove what killed adds left (called under the lock, when no add is running): records without an
        image, and temporary files."""
        owner_dir = self._owner_dir(owner)
        shutil.rmtree(owner_dir / ".tmp", ignore_errors=True)
        records = owner_dir / "records"
        for path in records.glob("*.json") if records.is_dir() else ():
            drawing = _read_record(path)
            if drawing is None or not self._image_path(owner, drawing).is_file():
                path.unlink(missing_ok=True)

    def _temporary(self, owner: str, suffix: str, content: bytes, written: list[Path]) -> Path:
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self._owner_dir(owner) / ".tmp")
        written.append(Path(name))
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, 0o644)
        return Path(name)

    @contextlib.contextmanager
    def _locked(self):
        """An exclusive ``flock`` on ``DIR/.lock`` for every process using the folder (not re-entrant)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


def _decode(png: bytes, name: str) -> np.ndarray:
    """The PNG's pixels, as the page reads the canvas (:func:`read_png`: its header checked before decoding)."""
    return read_png(png, max_width=MAX_SIDE, max_height=MAX_SIDE, name=name)


def _checked_owner(owner) -> str:
    if not is_owner(owner):
        raise ValueError(f"owner must be an owner id ({OWNER_CHARACTERS} hex digits: mnist_core.identity.owner_of a "
                         f"personal key), got {owner!r:.40}")
    return owner


def _checked_digit(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < N_CLASSES:
        raise ValueError(f"{what} must be a digit 0-9, got {value!r:.40}")
    return int(value)


def _checked_probabilities(values) -> tuple[float, ...] | None:
    if values is None:
        return None
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        values = ()
    if len(values) != N_CLASSES or not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
        raise ValueError(f"probabilities must be ten numbers in [0, 1] or None, got {values!r:.80}")
    return tuple(round(v, 6) for v in values)


def _read_record(path: Path) -> Drawing | None:
    """The drawing a record describes, or None for a missing or damaged record (never listed)."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        drawing = Drawing(values["id"], _checked_digit(values["label"], "label"),
                          None if values["predicted"] is None else _checked_digit(values["predicted"], "predicted"),
                          str(values["model"]), str(values["created"]),
                          _checked_probabilities(values.get("probabilities")))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return drawing if drawing.id == path.stem else None
