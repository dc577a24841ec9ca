"""How to train: the settings of a run, their limits, and the named presets.

No TensorFlow here, so the command line can parse and check settings, and
list models, without loading it (see :mod:`mnist_core.training` for the engine).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

from mnist_core.architectures import ARCHITECTURES

DEFAULT_LEARNING_RATE = 1e-3
SCHEDULES = ("auto", "constant", "cosine")
MAX_EPOCHS = 500
MAX_MEMBERS = 5
MAX_BOX_FILLED = 100_000


@dataclass(frozen=True)
class TrainingSettings:
    """How to train, and on what beyond the data given. ``members`` > 1 trains that many networks and averages them.

    ``extra_sources`` names real handwriting added to the training set (keys of
    :data:`mnist_core.sources.EXTRA_SOURCES`: ``usps``, ``optdigits``, ``cvl``,
    ``bhmsds``, ``pendigits``), read from ``handwriting_data`` (default:
    ``$HANDWRITING_DATA``); ``crossed_sevens``, ``slashed_zeros`` and
    ``box_filled`` (a count) add synthetic copies (see :mod:`mnist_core.synthetic`).
    ``base_model`` names a saved model of the same architecture and members
    whose weights each network starts from (a fine-tuning), instead of random ones.
    """

    architecture: str = "simple"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = DEFAULT_LEARNING_RATE
    augment: bool = False
    validation_split: float = 0.1
    seed: int = 0
    members: int = 1
    schedule: str = "auto"  # "constant", "cosine", or "auto": the architecture's own (ARCHITECTURES)
    extra_sources: tuple[str, ...] = ()
    handwriting_data: str = ""
    crossed_sevens: bool = False
    slashed_zeros: bool = False
    box_filled: int = 0
    base_model: str = ""  # a saved model to start from (fine-tuning), instead of random weights

    def __post_init__(self):
        object.__setattr__(self, "extra_sources", tuple(self.extra_sources))  # a list from JSON, say

    @property
    def synthetic(self) -> list[str]:
        """The synthetic copies these settings add, in words: ``["crossed 7s", "500 box-filled digits"]``."""
        wanted = [("crossed 7s", self.crossed_sevens), ("slashed 0s", self.slashed_zeros),
                  (f"{self.box_filled} box-filled digits", self.box_filled)]
        return [what for what, on in wanted if on]

    def to_json(self) -> str:
        """These settings as one JSON object (:meth:`from_json` reads it back)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainingSettings:
        """Settings from :meth:`to_json`'s JSON; ValueError naming an unknown field."""
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"training settings must be a JSON object, got {type(values).__name__}")
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    @property
    def resolved_schedule(self) -> str:
        """The learning-rate schedule this run uses: "constant", or "cosine" (decaying over the whole run)."""
        return ARCHITECTURES[self.architecture].schedule if self.schedule == "auto" else self.schedule

    def check(self, n_train: int | None = None) -> TrainingSettings:
        """Raise ValueError naming the first setting out of range; return self when all are fine.

        ``extra_sources`` are checked where they are loaded (:func:`mnist_core.sources.with_training_sources`),
        the one place that knows them.
        """
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURES)}"
            )
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs must be a whole number from 1 to {MAX_EPOCHS}, got {self.epochs}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch size must be a whole number of at least 1, got {self.batch_size}")
        if not self.learning_rate > 0 or not math.isfinite(self.learning_rate) or self.learning_rate > 1:
            raise ValueError(f"learning rate must be above 0 and at most 1, got {self.learning_rate}")
        if not 0 <= self.validation_split < 0.5:
            raise ValueError(f"validation split must be in [0, 0.5), got {self.validation_split}")
        if not isinstance(self.members, int) or not 1 <= self.members <= MAX_MEMBERS:
            raise ValueError(f"members must be a whole number from 1 to {MAX_MEMBERS}, got {self.members}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not isinstance(self.box_filled, int) or not 0 <= self.box_filled <= MAX_BOX_FILLED:
            raise ValueError(f"box_filled must be a whole number from 0 to {MAX_BOX_FILLED}, got {self.box_filled}")
        if n_train is not None and self.batch_size > n_train:
            raise ValueError(f"batch size {self.batch_size} is larger than the {n_train} training images")
        return self


# The sources of the shipped default's training set beyond MNIST's.
WORLD_SOURCES = ("usps", "optdigits", "cvl", "bhmsds", "pendigits")

# Named settings. The tutorial's three train as the Keras MNIST tutorial did
# (10 epochs, batches of 200, Adam at 0.001); `quick` is the fastest way to
# 99% test accuracy on a CPU; `best` is our network on MNIST alone; `world`
# trains it from scratch on MNIST and every other writer there is to train on,
# plus crossed 7s and slashed 0s; `world-tune` fine-tunes a saved `best` x2
# model on the same writers and slashed 0s (it made the shipped default from the
# previous one: see docs/models.md).
PRESETS = {
    "quick": TrainingSettings("fast", epochs=3, batch_size=256, learning_rate=6e-3, validation_split=0,
                              schedule="cosine"),
    "tutorial-baseline": TrainingSettings("baseline", epochs=10, batch_size=200, validation_split=0),
    "tutorial-simple": TrainingSettings("simple", epochs=10, batch_size=200, validation_split=0),
    "tutorial-large": TrainingSettings("large", epochs=10, batch_size=200, validation_split=0),
    "best": TrainingSettings("best", epochs=30, batch_size=128, augment=True, validation_split=0, members=2),
    "world": TrainingSettings("best", epochs=20, batch_size=128, augment=True, validation_split=0, members=2,
                              extra_sources=WORLD_SOURCES, crossed_sevens=True, slashed_zeros=True),
    "world-tune": TrainingSettings("best", epochs=3, batch_size=128, learning_rate=1.5e-4, augment=True,
                                   validation_split=0, members=2, extra_sources=WORLD_SOURCES,
                                   slashed_zeros=True, base_model="default"),
}
