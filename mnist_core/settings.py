"""How to train: the settings of a run, their limits, and the named presets.

No TensorFlow here, so the command line can parse and check settings, and
list models, without loading it (see :mod:`mnist_core.training` for the engine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The names of mnist_core.architectures.ARCHITECTURES (a test holds them equal).
ARCHITECTURE_NAMES = ("baseline", "simple", "large", "best")
DEFAULT_LEARNING_RATE = 1e-3
SCHEDULES = ("auto", "constant", "cosine")
MAX_EPOCHS = 500
MAX_MEMBERS = 5


@dataclass(frozen=True)
class TrainingSettings:
    """How to train. ``members`` > 1 trains that many networks and averages them."""

    architecture: str = "simple"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = DEFAULT_LEARNING_RATE
    augment: bool = False
    validation_split: float = 0.1
    seed: int = 0
    members: int = 1
    schedule: str = "auto"  # "constant", "cosine", or "auto": cosine for `best`, constant for the tutorial's

    @property
    def cosine(self) -> bool:
        """Whether the learning rate decays along a cosine over the whole run."""
        return self.schedule == "cosine" or (self.schedule == "auto" and self.architecture == "best")

    def check(self, n_train: int | None = None) -> TrainingSettings:
        """Raise ValueError naming the first setting out of range; return self when all are fine."""
        if self.architecture not in ARCHITECTURE_NAMES:
            raise ValueError(
                f"unknown architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURE_NAMES)}"
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
        if n_train is not None and self.batch_size > n_train:
            raise ValueError(f"batch size {self.batch_size} is larger than the {n_train} training images")
        return self


# Named settings. The tutorial's three train as the Keras MNIST tutorial did
# (10 epochs, batches of 200, Adam at 0.001); `quick` is the fastest way to
# 99% test accuracy on a CPU; `best` made the shipped default model.
PRESETS = {
    "quick": TrainingSettings("simple", epochs=4, batch_size=256, learning_rate=6e-3, validation_split=0,
                              schedule="cosine"),
    "tutorial-baseline": TrainingSettings("baseline", epochs=10, batch_size=200, validation_split=0),
    "tutorial-simple": TrainingSettings("simple", epochs=10, batch_size=200, validation_split=0),
    "tutorial-large": TrainingSettings("large", epochs=10, batch_size=200, validation_split=0),
    "best": TrainingSettings("best", epochs=30, batch_size=128, augment=True, validation_split=0, members=2),
}
