"""What a training reports as it runs: :class:`TrainingProgress`, and :class:`Watched` at each epoch's end.

Plain data, without TensorFlow, so that whoever only watches a training (the page, the protocol's reader)
does not load it (~3 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Watched:
    """At an epoch's end: what the network being trained makes of a watched drawing, and its first layer."""

    probabilities: tuple[float, ...] | None  # (10,) for the watched drawing; None when none is watched
    filters: tuple[tuple[float, ...], ...] | None  # the first convolution's kernels, each k*k values row by row
    filter_size: int = 0  # k; 0 for a network without convolutions

    def kernels(self) -> np.ndarray | None:
        """The filters as a (k, k, 1, F) array, as Keras holds them, or None."""
        if not self.filters:
            return None
        k = self.filter_size
        return np.asarray(self.filters, np.float32).reshape(-1, k, k).transpose(1, 2, 0)[:, :, None, :]


@dataclass(frozen=True)
class TrainingProgress:
    """One report: after a batch (``val_*`` None) or at the end of an epoch (``watched`` set)."""

    member: int  # 1-based network being trained, of `members`
    members: int
    epoch: int  # 1-based
    epochs: int
    batch: int  # batches done in this epoch
    batches: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    images_per_second: float
    seconds_elapsed: float
    seconds_left: float
    epoch_end: bool
    watched: Watched | None = None

    @classmethod
    def from_dict(cls, values: dict) -> TrainingProgress:
        """The inverse of ``dataclasses.asdict`` (for :mod:`mnist_core.protocol`)."""
        watched = values.get("watched")
        if watched is not None:
            watched = Watched(
                probabilities=None if watched["probabilities"] is None else tuple(watched["probabilities"]),
                filters=None if watched["filters"] is None else tuple(map(tuple, watched["filters"])),
                filter_size=watched["filter_size"])
        return cls(**{**values, "watched": watched})

    @property
    def fraction_done(self) -> float:
        done = ((self.member - 1) * self.epochs + self.epoch - 1) * self.batches + self.batch
        return min(1.0, done / (self.members * self.epochs * self.batches))


ProgressCallback = Callable[[TrainingProgress], None]
