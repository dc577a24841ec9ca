"""How a training in another process reports to whoever started it: one home for both ends.

``python -m mnist_core train --progress-jsonl`` writes one JSON object a line on
stdout: ``{"event": "progress", "progress": {...}}`` (a :class:`TrainingProgress`)
after each epoch and at most every :data:`PROGRESS_INTERVAL` seconds between,
then ``{"event": "saved", "card": {...}}`` (the :class:`ModelCard`) once the model
is saved. Errors are ``error: ...`` lines on stderr. The exit status is 0 when the
model was saved, :data:`EXIT_CANCELLED` when it was stopped on request, anything
else when it failed. Settings go the other way as ``--settings-json``
(:meth:`TrainingSettings.to_json`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from mnist_core.card import ModelCard
from mnist_core.progress import TrainingProgress

EXIT_CANCELLED = 3  # `train` stopped on request (SIGTERM or Ctrl-C); nothing was saved
PROGRESS_INTERVAL = 0.25  # seconds between two per-batch progress lines


@dataclass(frozen=True)
class Event:
    """One line of a training's report: ``progress`` or ``card`` is set, by ``kind``."""

    kind: str  # "progress" or "saved"
    progress: TrainingProgress | None = None
    card: ModelCard | None = None


def progress_line(progress: TrainingProgress) -> str:
    return json.dumps({"event": "progress", "progress": asdict(progress)})


def saved_line(card: ModelCard) -> str:
    return json.dumps({"event": "saved", "card": card.to_dict()})


def parse_line(line: str) -> Event | None:
    """The event a line reports, or None for a line that is not one (other output, a torn line)."""
    try:
        values = json.loads(line)
        if not isinstance(values, dict):
            return None
        if values.get("event") == "progress":
            return Event("progress", progress=TrainingProgress.from_dict(values["progress"]))
        if values.get("event") == "saved":
            return Event("saved", card=ModelCard.from_dict(values["card"]))
    except (ValueError, TypeError, KeyError):
        return None
    return None
