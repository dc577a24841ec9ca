"""The model card: what a saved model is, how it was made, and what it measured, as a checked schema.

A card is ``models/NAME.json`` beside the model. :meth:`ModelCard.from_dict` reads
every card written so far (the shipped ``default.json`` included: older cards
lack fields that newer ones have, and get their defaults) and checks each field's
type, raising :class:`CardError` that names the field, so a damaged or hostile
card is reported as such instead of failing later wherever it is used.
:meth:`ModelCard.to_dict` writes it back as JSON-ready values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from mnist_core.settings import TrainingSettings


class CardError(ValueError):
    """A model card does not follow the schema; the message names the field."""


@dataclass(frozen=True)
class TrainingSource:
    """One part of a model's training set beyond its main source."""

    name: str  # a key of mnist_core.sources.EXTRA_SOURCES or SYNTHETIC_SOURCES
    description: str
    path: str  # the file(s) read, "" for synthetic copies
    sha256: str  # of the files read, or of the images and labels made
    count: int  # digits added
    preprocessing: int  # the preprocessing.PREPROCESSING_VERSION they were normalised with

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainingData:
    """What a model was trained on: its main source and what was added to it."""

    source: str  # as given to load_mnist: a folder, an .npz or a .csv
    sha256: str
    n_train: int
    n_validation: int = 0
    extra: tuple[TrainingSource, ...] = ()
    extra_sha256: str = ""
    extra_source: str = ""  # cards before 2026-12 described what was added in this one line instead

    def describe_extra(self) -> str:
        """What was added to the main source, in words ("" when nothing was)."""
        if self.extra:
            return " + ".join(f"{s.description} ({s.count:,})" for s in self.extra)
        return self.extra_source


@dataclass(frozen=True)
class TestSet:
    """Where a model's test error was measured."""

    source: str
    sha256: str
    n_test: int

    @property
    def path(self) -> str | None:
        """Where to load it from (a path for load_mnist), or None when the card does not say."""
        if self.source.startswith("keras.datasets.mnist (") and self.source.endswith(")"):
            return self.source[len("keras.datasets.mnist (") : -1]
        return self.source or None


@dataclass(frozen=True)
class BaseModel:
    """The model a fine-tuned model started from."""

    name: str
    keras_sha256: str
    architecture: str
    test_error: float | None

    @classmethod
    def of(cls, card: ModelCard) -> BaseModel:
        """What a fine-tuned model's card says of the model ``card`` describes, its base."""
        return cls(card.name, card.keras_sha256, card.architecture, card.test_error)


@dataclass(frozen=True)
class Adaptation:
    """How a model was fine-tuned on one user's labelled drawings (:mod:`mnist_core.adapt`), and what it measured.

    The accuracies are percent right on the drawings held back from the fine-tuning, by the base model
    (before) and by this one (after); None when too few drawings were given to hold any back.
    """

    drawings: str  # where they were read: a class folder (DIGIT/NAME.png) or a Kaggle-format CSV
    sha256: str  # the CSV's SHA-256, or of a folder's SHA256SUMS-style list of its files (mnist_core.adapt)
    count: int  # drawings read
    trained: int  # of them fine-tuned on
    held_back: int  # of them only measured on
    accuracy_before: float | None
    accuracy_after: float | None
    replay: int  # MNIST training digits mixed in, so that it does not forget them
    counts: list[int] = field(default_factory=list)  # drawings read of each digit 0-9


@dataclass
class ModelCard:
    """What a saved model is, how it was made, and what it measured."""

    name: str
    architecture: str  # "best", or "best x2" for an ensemble of two
    parameters: int
    training: TrainingSettings
    data: TrainingData
    test_set: TestSet
    epochs_run: int
    validation_error: float | None  # percent
    test_error: float | None  # percent, on test_set
    per_class_error: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    misclassified: list[int] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)  # per-epoch loss, accuracy, val_loss, ...
    training_seconds: float = 0.0
    created: str = ""
    tensorflow: str = ""
    keras: str = ""
    command: str = ""
    keras_sha256: str = ""
    litert_sha256: str = ""
    # The preprocessing.PREPROCESSING_VERSION its training digits went through; cards
    # written before versions were recorded are version 1.
    preprocessing: int = 1
    base_model: BaseModel | None = None
    # Who trained it: an owner id (mnist_core.identity.owner_of a user's key; no personal data), "" when
    # trained outside the page (the command line, the shipped models).
    owner: str = ""
    # Set on a model fine-tuned on a user's drawings: which drawings, and its accuracy on those held back.
    adaptation: Adaptation | None = None

    @property
    def older_preprocessing(self) -> bool:
        """True when digits it was trained on were normalised by an older preprocessing than today's."""
        from mnist_core.preprocessing import PREPROCESSING_VERSION

        return bool(self.data.extra or self.data.extra_source) and self.preprocessing < PREPROCESSING_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values) -> ModelCard:
        """A card from its JSON object; CardError naming the first field that does not follow the schema."""
        if not isinstance(values, dict):
            raise CardError(f"a card must be a JSON object, got {_kind(values)}")
        read = _Reader(values, "card")
        architecture = read.text("architecture")
        return cls(
            name=read.text("name"),
            architecture=architecture,
            parameters=read.whole("parameters"),
            training=_training(read.mapping("training"), architecture),
            data=_training_data(_Reader(read.mapping("data"), "data")),
            test_set=_test_set(_Reader(read.mapping("test_set"), "test_set")),
            epochs_run=read.whole("epochs_run", 0),
            validation_error=read.number("validation_error", None, optional=True),
            test_error=read.number("test_error", None, optional=True),
            per_class_error=read.numbers("per_class_error"),
            confusion=read.matrix("confusion"),
            misclassified=read.wholes("misclassified"),
            history=read.history("history"),
            training_seconds=read.number("training_seconds", 0.0),
            created=read.text("created", ""),
            tensorflow=read.text("tensorflow", ""),
            keras=read.text("keras", ""),
            command=read.text("command", ""),
            keras_sha256=read.text("keras_sha256", ""),
            litert_sha256=read.text("litert_sha256", ""),
            preprocessing=read.whole("preprocessing", 1),
            base_model=_base_model(values.get("base_model")),
            owner=read.text("owner", ""),
            adaptation=_adaptation(values.get("adaptation")),
        )


def _training(values: dict, architecture: str) -> TrainingSettings:
    known = {f.name for f in fields(TrainingSettings)}
    chosen = {k: v for k, v in values.items() if k in known and k != "architecture"}
    try:
        return TrainingSettings(architecture=architecture.split(" x")[0], **chosen)
    except TypeError as exc:
        raise CardError(f"card field 'training' is not valid training settings ({exc})") from exc


def _training_data(read: _Reader) -> TrainingData:
    extra = []
    for i, item in enumerate(read.list("extra")):
        if not isinstance(item, dict):
            raise CardError(f"card field 'data.extra[{i}]' must be an object, got {_kind(item)}")
        part = _Reader(item, f"data.extra[{i}]")
        extra.append(TrainingSource(part.text("name"), part.text("description", ""), part.text("path", ""),
                                    part.text("sha256", ""), part.whole("count"), part.whole("preprocessing", 1)))
    return TrainingData(read.text("source", ""), read.text("sha256", ""), read.whole("n_train", 0),
                        read.whole("n_validation", 0), tuple(extra), read.text("extra_sha256", ""),
                        read.text("extra_source", ""))


def _test_set(read: _Reader) -> TestSet:
    return TestSet(read.text("source", ""), read.text("sha256", ""), read.whole("n_test", 0))


def _base_model(values) -> BaseModel | None:
    if values is None:
        return None
    if not isinstance(values, dict):
        raise CardError(f"card field 'base_model' must be an object or null, got {_kind(values)}")
    read = _Reader(values, "base_model")
    return BaseModel(read.text("name"), read.text("keras_sha256", ""), read.text("architecture", ""),
                     read.number("test_error", None, optional=True))


def _adaptation(values) -> Adaptation | None:
    if values is None:
        return None
    if not isinstance(values, dict):
        raise CardError(f"card field 'adaptation' must be an object or null, got {_kind(values)}")
    read = _Reader(values, "adaptation")
    return Adaptation(read.text("drawings"), read.text("sha256"), read.whole("count"), read.whole("trained"),
                      read.whole("held_back"), read.number("accuracy_before", None, optional=True),
                      read.number("accuracy_after", None, optional=True), read.whole("replay", 0),
                      read.wholes("counts"))


_REQUIRED = object()


class _Reader:
    """Reads typed fields of one JSON object; CardError names the field and what it holds instead."""

    def __init__(self, values: dict, where: str):
        self.values, self.where = values, where

    def _get(self, key: str, default):
        if key in self.values:
            return self.values[key]
        if default is _REQUIRED:
            raise CardError(f"card field '{self._name(key)}' is missing")
        return default

    def _name(self, key: str) -> str:
        return key if self.where == "card" else f"{self.where}.{key}"

    def _wrong(self, key: str, expected: str, value) -> CardError:
        return CardError(f"card field '{self._name(key)}' must be {expected}, got {_kind(value)}")

    def text(self, key: str, default=_REQUIRED) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self._wrong(key, "text", value)
        return value

    def whole(self, key: str, default=_REQUIRED) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "a whole number", value)
        return value

    def number(self, key: str, default=_REQUIRED, optional: bool = False) -> float | None:
        value = self._get(key, default)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self._wrong(key, "a number" + (" or null" if optional else ""), value)
        return float(value)

    def mapping(self, key: str) -> dict:
        value = self._get(key, {})
        if not isinstance(value, dict):
            raise self._wrong(key, "an object", value)
        return value

    def list(self, key: str) -> list:
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self._wrong(key, "a list", value)
        return value

    def numbers(self, key: str) -> list[float]:
        value = self.list(key)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise self._wrong(key, "a list of numbers", value)
        return [float(v) for v in value]

    def wholes(self, key: str) -> list[int]:
        value = self.list(key)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self._wrong(key, "a list of whole numbers", value)
        return value

    def matrix(self, key: str) -> list[list[int]]:
        value = self.list(key)
        if not all(isinstance(row, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in row)
                   for row in value):
            raise self._wrong(key, "a list of lists of whole numbers", value)
        return value

    def history(self, key: str) -> dict[str, list[float]]:
        value = self.mapping(key)
        for name, series in value.items():
            if not isinstance(series, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in series):
                raise CardError(f"card field '{self._name(key)}.{name}' must be a list of numbers, "
                                f"got {_kind(series)}")
        return value


def _kind(value) -> str:
    """A value's JSON kind, with a short excerpt: ``text 'abc'``, ``a list``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, str):
        return f"text {value[:30]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
