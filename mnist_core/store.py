"""The model store: ``models/NAME.keras``, ``models/NAME.json`` (its card) and
``models/NAME.tflite`` (its LiteRT copy, for fast single drawings; see
:mod:`mnist_core.litert`).

Writes are atomic: the files are written under temporary names in the same
folder, flushed to disk, then renamed into place, the card last, so an
interrupted save leaves the previous model usable. The card records the
SHA-256 of the ``.keras`` file it describes; a model whose file and card do
not match is listed as broken rather than loaded. It records the LiteRT copy's
too: a copy that is missing or does not match is not used (the predictor
converts the model itself, ~2 s, instead; ``make_litert_copy`` remakes it).
Loading uses Keras' safe mode, so a model file that carries code (a Lambda
layer, say) is refused, never executed. Before Keras sees a file, its size, and
the sizes its zip directory declares, are checked against :data:`MAX_MODEL_MB`
and :data:`MAX_CONFIG_MB`; a loaded model must take 28x28x1 digits and give ten
probabilities. Temporary files a killed save left are removed at the next listing
or save once :data:`STALE_TEMP_SECONDS` old.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mnist_core import architectures
from mnist_core.card import ModelCard
from mnist_core.errors import first_line as _first_line

if TYPE_CHECKING:
    import keras

ENV_VAR = "MNIST_MODELS_DIR"
DEFAULT_MODEL = "default"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TEMP_PREFIX = ".tmp-"
# A model file, and what its zip unpacks to, may be at most this large (the zoo's largest network is 2.4 MB,
# an ensemble of 5 of them 12 MB; Keras stores weights uncompressed). A larger one is listed as broken, never
# hashed nor given to Keras:
# an 8 GB file took 33 s to hash at each listing, and a .keras with 2 GB of assets was extracted to temp.
MAX_MODEL_MB = 200
# Keras reads config.json (and metadata.json) whole and parses it: 52 KB for the shipped model. One padded
# to 1.5 GiB peaked at 3.7 GB while loading.
MAX_CONFIG_MB = 5
CONFIG_MEMBERS = ("config.json", "metadata.json")
# A batch of 28x28 greyscale digits in, ten probabilities out (mnist_core.architectures holds both facts).
INPUT_SHAPE, OUTPUT_SHAPE = (None, *architectures.INPUT_SHAPE), (None, architectures.N_CLASSES)
# A save rewrites its temporary files within seconds (the .keras file last); one untouched for this long
# has no writer left (a save killed mid-way), and the next listing or save deletes it.
STALE_TEMP_SECONDS = 10 * 60


class ModelStoreError(Exception):
    """A model cannot be saved or loaded; the message says which and why."""


class ModelFiles(NamedTuple):
    """A model's three files in the store."""

    keras: Path
    card: Path
    litert: Path


@dataclass(frozen=True)
class StoredModel:
    """One entry of the store's listing: a usable model with its card, or a broken one with the reason."""

    name: str
    card: ModelCard | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def default_models_dir() -> Path:
    """``$MNIST_MODELS_DIR`` if set, else the ``models/`` folder beside the package."""
    from_env = os.environ.get(ENV_VAR, "")
    return Path(from_env).expanduser() if from_env else Path(__file__).resolve().parent.parent / "models"


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise a ValueError saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = repr(name) if len(str(name)) <= 80 else repr(str(name)[:80]) + "..."
        raise ValueError(
            f"invalid model name {shown}: use 1-64 letters, digits, '-' or '_' (no spaces, dots or path separators)"
        )
    return name


def file_sha256(path: Path) -> str:
    """A file's SHA-256, remembered while the file is unchanged (same inode, size, mtime and ctime).

    ctime cannot be set back by a user: any write or ``touch`` changes it, so a changed file is hashed again.
    """
    info = os.stat(path)
    key = (os.fspath(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    if key not in _checksums:
        if len(_checksums) > 256:
            _checksums.clear()
        _checksums[key] = _hash_file(path)
    return _checksums[key]


_checksums: dict[tuple, str] = {}


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    """Saved models in one folder (default: :func:`default_models_dir`)."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_models_dir()

    def files(self, name: str) -> ModelFiles:
        """The paths of model ``name``'s three files (``name`` must be valid: see :func:`check_name`)."""
        return ModelFiles(*(self.directory / f"{name}{suffix}" for suffix in (".keras", ".json", ".tflite")))

    def names(self) -> list[str]:
        """Names of every model with a ``.keras`` or ``.json`` file, sorted, ``default`` first."""
        if not self.directory.is_dir():
            return []
        found = {
            p.stem
            for p in self.directory.iterdir()
            if p.suffix in (".keras", ".json") and not p.name.startswith(".") and NAME_PATTERN.fullmatch(p.stem)
        }
        return sorted(found, key=lambda n: (n != DEFAULT_MODEL, n))

    def list(self) -> list[StoredModel]:
        """Every model in the store, each with its card or the reason it cannot be used.

        First removes the temporary files of saves killed long ago (see :data:`STALE_TEMP_SECONDS`).
        """
        self.remove_stale_temporaries(older_than=STALE_TEMP_SECONDS)
        return [self.inspect(name) for name in self.names()]

    def inspect(self, name: str) -> StoredModel:
        """Check model ``name`` without loading its weights: files present, card readable and matching."""
        check_name(name)
        keras_path, card_path, _ = self.files(name)
        if not keras_path.is_file():
            return StoredModel(name, None, f"{keras_path.name} is missing")
        if not card_path.is_file():
            return StoredModel(name, None, f"{card_path.name} (its card) is missing")
        size = keras_path.stat().st_size
        if size > MAX_MODEL_MB * 2**20:
            return StoredModel(name, None, f"{keras_path.name} is {size / 2**20:,.0f} MB, more than the "
                                           f"{MAX_MODEL_MB} MB a model file may be (not read)")
        try:
            card = ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
        except RecursionError:
            return StoredModel(name, None, f"{card_path.name} is not a valid card (nested too deeply)")
        except (OSError, ValueError) as exc:  # CardError is a ValueError, as are JSON's errors
            return StoredModel(name, None, f"{card_path.name} is not a valid card ({exc})")
        if (problem := _archive_problem(keras_path)) is not None:
            return StoredModel(name, card, problem)
        if card.keras_sha256 and card.keras_sha256 != file_sha256(keras_path):
            return StoredModel(name, card, f"{keras_path.name} does not match its card (checksum differs)")
        return StoredModel(name, card)

    def load(self, name: str = DEFAULT_MODEL) -> tuple[keras.Model, ModelCard]:
        """Load model ``name`` and its card, in Keras' safe mode."""
        entry = self.inspect(name)
        if entry.problem is not None:
            if entry.card is None and not any(p.exists() for p in self.files(name)[:2]):
                raise ModelStoreError(
                    f"no model named {name!r} in {self.directory}; train one with "
                    f"'python -m mnist_core train --name {name}'"
                )
            raise ModelStoreError(f"model {name!r} cannot be used: {entry.problem}")
        import keras  # here, not above: listing and inspecting models needs no TensorFlow (~3 s)

        keras_path = self.files(name).keras
        try:
            model = keras.saving.load_model(keras_path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for a bad file; all mean "unusable"
            raise ModelStoreError(f"model {name!r} cannot be loaded from {keras_path}: {_first_line(exc)}") from exc
        shapes = (getattr(model, "input_shape", None), getattr(model, "output_shape", None))
        if shapes != (INPUT_SHAPE, OUTPUT_SHAPE):
            raise ModelStoreError(
                f"model {name!r} in {keras_path} takes inputs of shape {shapes[0]} and gives outputs of shape "
                f"{shapes[1]}; a digit model takes {INPUT_SHAPE} (28x28 greyscale) and gives {OUTPUT_SHAPE}"
            )
        return model, entry.card

    def load_litert(self, name: str, card: ModelCard) -> bytes | None:
        """Model ``name``'s LiteRT copy if it is there and matches ``card``, else None."""
        path = self.files(check_name(name)).litert
        try:
            if path.stat().st_size > MAX_MODEL_MB * 2**20:  # not read into memory: it cannot be the card's
                return None
            flatbuffer = path.read_bytes()
        except OSError:
            return None
        matches = card.litert_sha256 and hashlib.sha256(flatbuffer).hexdigest() == card.litert_sha256
        return flatbuffer if matches else None

    def save(self, model: keras.Model, card: ModelCard) -> Path:
        """Save ``model``, its LiteRT copy and ``card`` under ``card.name``, atomically; returns the ``.keras`` path.

        The previous model of that name, if any, stays usable until the new
        files are complete on disk.
        """
        flatbuffer = self._litert_copy(model, card)
        self.remove_stale_temporaries(older_than=STALE_TEMP_SECONDS)

        def write_keras(path: Path) -> None:
            model.save(path)
            _fsync(path)
            card.keras_sha256 = file_sha256(path)

        # The copy first: until the card follows, the old card does not match it and it is not used.
        self._write_in_place(card, [(".tflite", lambda path: _write(path, flatbuffer)), (".keras", write_keras)])
        return self.files(card.name).keras

    def make_litert_copy(self, name: str) -> Path:
        """(Re)make model ``name``'s LiteRT copy from its ``.keras`` file, which stays as it is; returns its path.

        For a model saved before copies existed, or whose copy a killed save left not matching its card.
        """
        model, card = self.load(name)
        flatbuffer = self._litert_copy(model, card)
        self._write_in_place(card, [(".tflite", lambda path: _write(path, flatbuffer))])
        return self.files(name).litert

    def _litert_copy(self, model: keras.Model, card: ModelCard) -> bytes:
        """``model``'s LiteRT copy, its checksum recorded on ``card``."""
        from mnist_core.litert import to_litert

        try:
            flatbuffer = to_litert(model)
        except Exception as exc:  # the converter raises many types; all mean "this model cannot be copied"
            raise ModelStoreError(f"could not save model {card.name!r}: no LiteRT copy of it can be made "
                                  f"({_first_line(exc)})") from exc
        card.litert_sha256 = hashlib.sha256(flatbuffer).hexdigest()
        return flatbuffer

    def _write_in_place(self, card: ModelCard, files: list[tuple[str, Callable[[Path], None]]]) -> None:
        """Write each (suffix, writer) of ``files``, then ``card``, under temporary names; rename them in that order."""
        paths = self.files(check_name(card.name))
        card_path, final = paths.card, {".keras": paths.keras, ".tflite": paths.litert}
        temporaries: list[Path] = []
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            renames = []
            for suffix, write in files:
                temporary = self._temp_path(card.name, suffix, temporaries)
                write(temporary)
                renames.append((temporary, final[suffix]))
            temporary_card = self._temp_path(card.name, ".json", temporaries)
            _write(temporary_card, json.dumps(card.to_dict(), indent=1).encode("utf-8"))
            for temporary, path in [*renames, (temporary_card, card_path)]:
                os.replace(temporary, path)
        except OSError as exc:
            reason = exc.strerror or exc
            raise ModelStoreError(f"could not save model {card.name!r} in {self.directory}: {reason}") from exc
        finally:
            for temporary in temporaries:
                temporary.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def remove_stale_temporaries(self, name: str | None = None, older_than: float | None = None) -> list[Path]:
        """Clean up after saves that were killed midway (of model ``name`` only, if given).

        A save killed before its last rename has put the new ``NAME.tflite`` and
        ``NAME.keras`` in place while its card is still a temporary file: that card,
        which matches the new files, is moved into place, completing the save. Every other
        temporary file is deleted. Without ``older_than``, only call it when no save of
        that model can be running; with it, only files unmodified for ``older_than``
        seconds are touched (a running save's are not). A file that cannot be removed
        (a read-only store) is left. Returns the files deleted.
        """
        if not self.directory.is_dir():
            return []
        pattern = f"{TEMP_PREFIX}{check_name(name)}-*" if name is not None else f"{TEMP_PREFIX}*"
        removed = []
        for path in sorted(self.directory.glob(pattern)):
            try:
                if older_than is not None and time.time() - path.stat().st_mtime < older_than:
                    continue
                if path.suffix == ".json" and self._complete_interrupted_save(path):
                    continue
                path.unlink(missing_ok=True)
            except OSError:
                continue
            removed.append(path)
        return removed

    def _complete_interrupted_save(self, temporary_card: Path) -> bool:
        """Move ``temporary_card`` into place if it matches the ``.keras`` in place and the card there does not."""
        try:
            card = ModelCard.from_dict(json.loads(temporary_card.read_text(encoding="utf-8")))
            keras_path, card_path, _ = self.files(check_name(card.name))
        except (OSError, ValueError, RecursionError):
            return False
        if not temporary_card.name.startswith(f"{TEMP_PREFIX}{card.name}-") or not keras_path.is_file():
            return False
        if not card.keras_sha256 or card.keras_sha256 != file_sha256(keras_path):
            return False
        if self.inspect(card.name).ok:  # the card in place already describes the file: nothing to complete
            return False
        os.replace(temporary_card, card_path)
        _fsync_dir(self.directory)
        return True

    def _temp_path(self, name: str, suffix: str, created: list[Path]) -> Path:
        fd, path = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{name}-", suffix=suffix, dir=self.directory)
        os.close(fd)
        created.append(Path(path))
        os.chmod(path, 0o644)  # mkstemp makes it private; a model is an ordinary file
        return Path(path)


def _archive_problem(path: Path) -> str | None:
    """Why the ``.keras`` zip at ``path`` is too large to give Keras, from its directory alone; None if it is not.

    The sizes are those the zip declares; :mod:`zipfile`, which Keras reads with, never
    unpacks a member beyond its declared size. A file that is no zip is Keras' to refuse.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    for member in members:
        if member.filename in CONFIG_MEMBERS and member.file_size > MAX_CONFIG_MB * 2**20:
            return (f"{path.name}: its {member.filename} is {member.file_size / 2**20:,.0f} MB, more than the "
                    f"{MAX_CONFIG_MB} MB a model's configuration may be (not loaded)")
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_MODEL_MB * 2**20:
        return (f"{path.name} unpacks to {unpacked / 2**20:,.0f} MB, more than the {MAX_MODEL_MB} MB a model "
                "may be (not loaded)")
    return None


def _write(path: Path, content: bytes) -> None:
    with open(path, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
