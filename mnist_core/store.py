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
probabilities.

Several processes may share one folder (page servers behind a load balancer, trainings, the command line):
every change of what the names point to (a save's renames, a delete, a clean-up) happens under an
``flock`` on ``DIR/.lock``, with the owner check that decides whether it may happen. A model belongs to
the owner its card records (:mod:`mnist_core.identity`; "" for the command line and the shipped models):
only a save by that same owner replaces it, only they delete it, and ``default`` is never deleted.
Temporary files name the process that writes them: those of a process that has ended (a save killed
mid-way) are removed at the next listing or save, those of a live one only once :data:`STALE_TEMP_SECONDS`
old (a writer on another machine).
"""

from __future__ import annotations

import contextlib
import fcntl
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
# A temporary file's name: .tmp-NAME-PID-RANDOM.SUFFIX (mkstemp's RANDOM has no '-'), so its model and its writer
# are known; files of an older format (.tmp-NAME-RANDOM.SUFFIX) have no PID and are judged by age alone.
_TEMPORARY = re.compile(rf"{re.escape(TEMP_PREFIX)}(?P<name>[A-Za-z0-9_-]+)-(?P<pid>[0-9]+)-[a-z0-9_]+\.[a-z]+")
LOCK_FILE = ".lock"  # flocked by whoever changes what the store's names point to
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


class ModelOwnedError(ModelStoreError):
    """Model ``name`` belongs to ``owner`` (its card's), not to ``asked_by``, who wanted to replace or delete it."""

    def __init__(self, name: str, owner: str, asked_by: str, doing: str = "replaced"):
        self.name, self.owner, self.asked_by = name, owner, asked_by
        super().__init__(f"model {name!r} was trained by {_who(owner)} and cannot be {doing} by {_who(asked_by)}: "
                         "only its owner can" + (", so choose another name" if doing == "replaced" else ""))


def _who(owner: str) -> str:
    return f"owner {owner}" if owner else "the command line (no owner)"


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

    def owner(self, name: str) -> str | None:
        """Who trained model ``name``: its card's owner ("" for the command line); None when it has no readable card."""
        try:
            values = json.loads(self.files(check_name(name)).card.read_text(encoding="utf-8"))
            owner = values.get("owner", "") if isinstance(values, dict) else None
        except (OSError, ValueError, RecursionError):
            return None
        return owner if isinstance(owner, str) else None

    def check_replaceable(self, name: str, owner: str) -> None:
        """Raise :class:`ModelOwnedError` if a model ``name`` saved by ``owner`` may not replace the one there.

        A name without a readable card (no model, or a broken one) may be taken by anyone. Checked again,
        under the store's lock, by every save.
        """
        current = self.owner(name)
        if current is not None and current != owner:
            raise ModelOwnedError(name, current, owner)

    def delete(self, name: str, owner: str) -> None:
        """Delete model ``name``'s files if ``owner`` trained it (never ``default``); ModelStoreError says why not."""
        check_name(name)
        if name == DEFAULT_MODEL:
            raise ModelStoreError(f"'{DEFAULT_MODEL}' is the shipped model and cannot be deleted")
        files = self.files(name)
        try:
            with self._locked():
                current = self.owner(name)
                if current is None:
                    if not any(p.exists() for p in files):
                        raise ModelStoreError(f"no model named {name!r} in {self.directory}")
                    raise ModelStoreError(f"model {name!r} has no readable card, so who trained it is unknown; "
                                          "it is not deleted")
                if current != owner:
                    raise ModelOwnedError(name, current, owner, doing="deleted")
                # Each file is first renamed to a temporary of this process, the card right after the copy: killed
                # before the .keras went too, the clean-up puts the card back (the model stays, without its copy,
                # which the predictor then makes itself); killed later, it deletes the rest.
                moved = []
                for path in (files.litert, files.card, files.keras):
                    if path.exists():
                        temporary = self._temp_path(name, path.suffix, moved)
                        os.replace(path, temporary)
                for temporary in moved:
                    temporary.unlink(missing_ok=True)
        except OSError as exc:
            raise ModelStoreError(f"could not delete model {name!r} in {self.directory}: "
                                  f"{exc.strerror or exc}") from exc
        _fsync_dir(self.directory)

    @contextlib.contextmanager
    def _locked(self):
        """Hold the store's lock: an exclusive ``flock`` on ``DIR/.lock``, for every process using the folder.

        Not re-entrant: each call opens the file anew, so a nested call in the same process would wait for ever.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_FILE
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            descriptor = os.open(path, os.O_RDONLY)  # a read-only store whose lock file exists: still lockable
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def save(self, model: keras.Model, card: ModelCard) -> Path:
        """Save ``model``, its LiteRT copy and ``card`` under ``card.name``, atomically; returns the ``.keras`` path.

        The previous model of that name, if any, stays usable until the new files are complete on disk; it
        is replaced only if ``card.owner`` trained it too (else :class:`ModelOwnedError`, nothing changed).
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

    def save_files(self, keras_file: bytes, card_file: bytes, litert_file: bytes | None = None) -> Path:
        """Save a model that was saved elsewhere (a Ray worker's own store) from its files' contents: its
        ``.keras``, its card (``.json``) and its LiteRT copy if it has one; returns the ``.keras`` path.

        As :meth:`save`: atomically, the card last, replacing a model only of the card's owner (else
        :class:`ModelOwnedError`). ModelStoreError, nothing changed, if the card is unreadable or a file
        does not match the checksum it records.
        """
        try:
            card = ModelCard.from_dict(json.loads(card_file))
        except (ValueError, RecursionError) as exc:  # CardError is a ValueError, as are JSON's errors
            raise ModelStoreError(f"could not save a model from its files: its card is not valid ({exc})") from exc
        check_name(card.name)
        files = [(".keras", keras_file, card.keras_sha256)] + ([(".tflite", litert_file, card.litert_sha256)]
                                                               if litert_file is not None else [])
        for suffix, content, recorded in files:
            if hashlib.sha256(content).hexdigest() != recorded:
                raise ModelStoreError(f"could not save model {card.name!r}: its {suffix} file does not match its "
                                      "card (checksum differs); it was damaged on the way, nothing was changed")
        self.remove_stale_temporaries(older_than=STALE_TEMP_SECONDS)
        # The copy first, as save() does; each content is bound now, not when the lambda runs.
        writers = [(suffix, lambda path, content=content: _write(path, content)) for suffix, content, _ in files]
        self._write_in_place(card, sorted(writers, key=lambda w: w[0] != ".tflite"))
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
            # The check and the renames under one lock: two processes saving at once, under one name or two,
            # rename one after the other, and neither replaces a model the other's owner does not own.
            with self._locked():
                self.check_replaceable(card.name, card.owner)
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
        """Clean up after saves (and deletes) that were killed midway (of model ``name`` only, if given).

        A save killed before its last rename has put the new ``NAME.tflite`` and
        ``NAME.keras`` in place while its card is still a temporary file: that card,
        which matches the new files, is moved into place, completing the save. Every other
        temporary file is deleted. With ``older_than``, only files whose writer has ended
        (their name says which process wrote them) or unmodified for ``older_than`` seconds
        are touched, never a running save's; without it, every temporary file is (only when
        no save can be running). Done under the store's lock, so never between another save's
        renames. A file that cannot be removed (a read-only store) is left. Returns the files deleted.
        """
        if name is not None:
            check_name(name)
        if not self.directory.is_dir() or not any(p.name.startswith(TEMP_PREFIX) for p in self.directory.iterdir()):
            return []
        try:
            with self._locked():
                return self._remove_temporaries(name, older_than)
        except OSError:  # no lock can be had (a read-only store without its lock file): nothing can be removed
            return []

    def _remove_temporaries(self, name: str | None, older_than: float | None) -> list[Path]:
        removed = []
        for path in sorted(self.directory.glob(f"{TEMP_PREFIX}*")):
            parsed = _TEMPORARY.fullmatch(path.name)
            if name is not None and (parsed.group("name") != name if parsed else
                                     not path.name.startswith(f"{TEMP_PREFIX}{name}-")):
                continue
            try:
                writer_alive = parsed is not None and _process_alive(int(parsed.group("pid")))
                young = time.time() - path.stat().st_mtime < older_than if older_than is not None else False
                if older_than is not None and young and (writer_alive or parsed is None):
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
        fd, path = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{name}-{os.getpid()}-", suffix=suffix, dir=self.directory)
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


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` (of this machine) still runs; a zombie counts as running until reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process, or no pid we can ask about
        return True
    return True


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
