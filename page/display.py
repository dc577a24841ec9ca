"""What the page shows, built from mnist_core's results: pictures, charts, texts, checked uploads.

Nothing here imports Streamlit; ``app.py`` lays these out. Images are uint8
arrays ready for ``st.image``, charts are Altair charts for ``st.altair_chart``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from mnist_core.data import DataError, load_mnist, resolve_source
from mnist_core.settings import TrainingSettings

if TYPE_CHECKING:
    from mnist_core.card import ModelCard
    from mnist_core.data import MnistData
    from mnist_core.progress import TrainingProgress
    from mnist_core.store import StoredModel

# Uploads larger than this are refused before they are read; .streamlit/config.toml sets
# server.maxUploadSize to the same number, so the server refuses them first.
MAX_UPLOAD_MB = 200
# Uploads are kept (in models/.uploads) only for trainings that started: a model trained on one finds its
# test set there. At most the newest UPLOADS_KEPT, and UPLOADS_KEPT_MB in all; older ones are pruned when a
# training starts, never one a training uses, those a model's card names as its test set last.
UPLOADS_KEPT = 5
UPLOADS_KEPT_MB = 1000
UPLOAD_TEMP_PREFIX = ".tmp-upload-"
STALE_UPLOAD_SECONDS = 60 * 60  # an upload is written in seconds: an older temporary file's writer is gone
HIGHLIGHT = "#c62828"  # the theme's primary colour (.streamlit/config.toml): the top class, the errors
MUTED = "#9aa4b2"
SPLIT_COLOURS = {"training": MUTED, "validation": HIGHLIGHT}
GALLERY_SIZE = 44  # misclassified test digits the page shows
# Marks that format text inside a line in Streamlit's Markdown: emphasis, code, links, HTML, LaTeX,
# strikethrough, tables, and its :colour[...] and :material/icon: directives.
MARKDOWN_SPECIAL = set("\\`*_[]<>$~|:#")
GRID_STEP = 45  # how much a grid line differs from the pixel it crosses (grey levels)


# --- pictures ---------------------------------------------------------------------------


def enlarge(image: np.ndarray, scale: int = 10, grid: bool = True) -> np.ndarray:
    """A greyscale uint8 image blown up ``scale`` times with visible pixels (RGB uint8).

    Each pixel becomes a ``scale`` x ``scale`` block (nearest neighbour); with
    ``grid``, a faint line is drawn along the top and left of every block and
    around the whole image.
    """
    big = np.repeat(np.repeat(np.asarray(image, np.uint8), scale, axis=0), scale, axis=1)
    if grid:
        big = big.astype(np.int16)
        lines = np.zeros(big.shape, bool)
        lines[::scale, :] = lines[:, ::scale] = True
        lines[-1, :] = lines[:, -1] = True
        shifted = np.where(big < 128, big + GRID_STEP, big - GRID_STEP)
        big = np.where(lines, shifted, big).astype(np.uint8)
    return np.repeat(big[..., None], 3, axis=2)


def thumbnail(image: np.ndarray, size: int = 56) -> np.ndarray:
    """``image`` fitted, keeping its aspect ratio, into a black ``size`` x ``size`` square; small images stay crisp."""
    picture = Image.fromarray(np.asarray(image, np.uint8))
    method = Image.Resampling.NEAREST if size >= max(picture.size) else Image.Resampling.BOX
    return np.asarray(ImageOps.pad(picture, (size, size), method=method, color=0))


def steps_strip(steps: dict[str, np.ndarray], size: int = 56, gap: int = 6) -> np.ndarray:
    """The preprocessing steps' pictures side by side in one row (so they stay one row on a phone): uint8."""
    tiles = [thumbnail(image, size) for image in steps.values()]
    tiles = [tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2) for tile in tiles]
    row = np.full((size, len(tiles) * (size + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        row[:, i * (size + gap):i * (size + gap) + size] = tile[..., :3]
    return row


# --- charts -----------------------------------------------------------------------------


def probability_chart(probabilities: Sequence[float], height: int = 210) -> dict:
    """Bars of the ten probabilities, the top class highlighted: a Vega-Lite spec for ``st.vega_lite_chart``.

    A plain spec rather than an Altair chart: the page draws it at every stroke, and
    building and validating it with Altair takes ~15 ms of the time to the prediction.
    """
    p = np.asarray(probabilities, float)
    top = int(p.argmax()) if p.any() else -1  # nothing drawn: nothing highlighted
    return {
        "data": {"values": [{"digit": str(d), "probability": float(v), "top": d == top} for d, v in enumerate(p)]},
        "mark": {"type": "bar", "cornerRadiusTopLeft": 3, "cornerRadiusTopRight": 3},
        "encoding": {
            "x": {"field": "digit", "type": "nominal", "sort": None, "title": None,
                  "axis": {"labelAngle": 0, "labelFontSize": 14}},
            "y": {"field": "probability", "type": "quantitative", "title": None, "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}},
            "color": {"condition": {"test": "datum.top", "value": HIGHLIGHT}, "value": MUTED},
            "tooltip": [{"field": "digit", "type": "nominal"},
                        {"field": "probability", "type": "quantitative", "format": ".1%"}],
        },
        "height": height,
    }


def history_frame(history: dict) -> pd.DataFrame:
    """A card's per-epoch history in long form: ``epoch``, ``metric`` (loss, accuracy), ``split``, ``value``."""
    rows = []
    for key, values in history.items():
        split = "validation" if key.startswith("val_") else "training"
        metric = key.removeprefix("val_")
        if metric not in ("loss", "accuracy"):
            continue
        rows += [(epoch, metric, split, float(v)) for epoch, v in enumerate(values, start=1)]
    return pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])


def live_frame(reports: Sequence[TrainingProgress]) -> pd.DataFrame:
    """Progress reports of a running training in the same long form, ``epoch`` fractional.

    Per-batch reports give the training curves; epoch-end reports add the validation points.
    """
    rows = []
    for p in reports:
        epoch = (p.member - 1) * p.epochs + p.epoch - 1 + p.batch / max(p.batches, 1)
        rows += [(epoch, "loss", "training", p.loss), (epoch, "accuracy", "training", p.accuracy)]
        if p.epoch_end and p.val_loss is not None:
            rows += [(epoch, "loss", "validation", p.val_loss), (epoch, "accuracy", "validation", p.val_accuracy)]
    return pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])


def curve_chart(frame: pd.DataFrame, metric: str, height: int = 220) -> alt.Chart:
    """Line chart of one ``metric`` (loss or accuracy) by epoch, training and validation.

    ``height`` is the whole chart's, axes and title included.
    """
    data = frame[frame["metric"] == metric]
    fmt = "%" if metric == "accuracy" else ".2f"
    # Only the splits that have points get a legend entry (a model trained without a validation
    # split has none); each keeps its colour when validation points arrive during training.
    splits = [s for s in SPLIT_COLOURS if (data["split"] == s).any()] or ["training"]
    return (
        alt.Chart(data, title=alt.Title(f"{metric} by epoch", anchor="start", fontSize=13))
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=alt.X("epoch:Q", title=None, axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=fmt, tickCount=4)),
            color=alt.Color(
                "split:N", title=None, scale=alt.Scale(domain=splits, range=[SPLIT_COLOURS[s] for s in splits]),
                legend=alt.Legend(orient="right"),
            ),
            tooltip=[alt.Tooltip("epoch:Q", format=".2f"), "split", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=height)
    )


def confusion_frame(confusion: Sequence[Sequence[int]]) -> pd.DataFrame:
    """One row per (true, predicted) cell: ``count``; ``errors``, the count off the diagonal (else 0);
    ``dark``, whether the cell is among the darkest mistakes (its label is then drawn in white)."""
    m = np.asarray(confusion, int)
    true, predicted = np.indices(m.shape)
    errors = np.where(true == predicted, 0, m).ravel()
    return pd.DataFrame({
        "true": true.ravel().astype(str),
        "predicted": predicted.ravel().astype(str),
        "count": m.ravel(),
        "errors": errors,
        "dark": errors > 0.6 * max(errors.max(), 1),
    })


def confusion_chart(confusion: Sequence[Sequence[int]], size: int = 340) -> alt.Chart:
    """Heatmap of the confusion matrix: mistakes in shades of red by count, correct answers grey on the diagonal."""
    frame = confusion_frame(confusion)
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", title="predicted", axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("true:N", title="true digit"),
    )
    correct = base.transform_filter("datum.true == datum.predicted").mark_rect(color="#e8ebf0")
    mistakes = base.transform_filter("datum.errors > 0").mark_rect().encode(
        color=alt.Color("errors:Q", title="mistakes", scale=alt.Scale(scheme="reds", domainMin=0)),
        tooltip=["true", "predicted", "count"],
    )
    labels = base.mark_text(fontSize=10).encode(
        text=alt.condition("datum.count > 0", alt.Text("count:Q"), alt.value("")),
        color=alt.condition("datum.dark", alt.value("white"), alt.value("#31333f")),
    )
    return (correct + mistakes + labels).properties(width=size, height=size)


def per_class_chart(per_class_error: Sequence[float], height: int = 200) -> alt.Chart:
    """Bars of the test error (percent) of each true class."""
    frame = pd.DataFrame({"digit": [str(d) for d in range(len(per_class_error))], "error": list(per_class_error)})
    return (
        alt.Chart(frame)
        .mark_bar(color=HIGHLIGHT, cornerRadiusTopLeft=3, cornerRadiusTopRight=3)
        .encode(
            x=alt.X("digit:N", title="true digit", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("error:Q", title="test error (%)"),
            tooltip=["digit", alt.Tooltip("error:Q", format=".2f", title="error %")],
        )
        .properties(height=height)
    )


def watched_frame(epochs: Sequence[TrainingProgress]) -> pd.DataFrame:
    """The watched drawing's probability of each digit at each epoch's end: ``epoch`` (a label such as
    "3", or "net 2 · 3" for an ensemble), ``order``, ``digit``, ``probability``."""
    rows = []
    for order, p in enumerate(e for e in epochs if e.watched is not None and e.watched.probabilities):
        label = f"net {p.member} · {p.epoch}" if p.members > 1 else str(p.epoch)
        rows += [(label, order, str(d), float(q)) for d, q in enumerate(p.watched.probabilities)]
    return pd.DataFrame(rows, columns=["epoch", "order", "digit", "probability"])


def watched_chart(frame: pd.DataFrame, height: int = 210) -> alt.Chart:
    """Heatmap of :func:`watched_frame`: digits down, epochs across, darker for more likely."""
    base = alt.Chart(frame).encode(
        x=alt.X("epoch:N", title="after epoch", sort=alt.EncodingSortField("order"), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("digit:N", title="digit"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("probability:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), legend=None),
        tooltip=["epoch", "digit", alt.Tooltip("probability:Q", format=".1%")],
    )
    labels = base.mark_text(fontSize=9).encode(
        text=alt.condition("datum.probability >= 0.1", alt.Text("probability:Q", format=".0%"), alt.value("")),
        color=alt.condition("datum.probability > 0.6", alt.value("white"), alt.value("#31333f")),
    )
    return (cells + labels).properties(height=height)


def layers_frame(layers: Sequence) -> pd.DataFrame:
    """The network as a table: one row per layer (:class:`~mnist_core.explain.LayerView`) with its type,
    output shape and number of weights."""
    return pd.DataFrame({
        "layer": [layer.name for layer in layers],
        "type": [layer.type for layer in layers],
        "output shape": [" × ".join(map(str, layer.output_shape)) for layer in layers],
        "weights": [layer.parameters for layer in layers],
    })


def feature_map_caption(layer) -> str:
    """What a convolution's grid of feature maps shows, in a learner's words."""
    height, width, filters = layer.feature_maps.shape
    return (f"{layer.name}: {filters} filters, each a {height}×{width} map of where it found its pattern "
            "in your drawing (white: strongly)")


# --- texts ------------------------------------------------------------------------------


def runner_up(probabilities: Sequence[float]) -> tuple[int, float]:
    """The second most likely digit and its probability."""
    p = np.asarray(probabilities, float)
    digit = int(np.argsort(p)[-2])
    return digit, float(p[digit])


def escape_markdown(text: str) -> str:
    """``text`` shown as it is by Streamlit's Markdown: every punctuation mark that could format is escaped.

    For messages that hold file names, paths or other text the page does not control.
    """
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in str(text))


def capitalised(text: str) -> str:
    """``text`` with its first letter capitalised and nothing else changed."""
    return text[:1].upper() + text[1:]


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"`` or ``"1 h 02 min"``."""
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def progress_text(p: TrainingProgress) -> str:
    """``"Epoch 2/5 · batch 120/422 · 35 s left"`` (with the network, for an ensemble)."""
    member = f"Network {p.member}/{p.members} · " if p.members > 1 else ""
    return f"{member}Epoch {p.epoch}/{p.epochs} · batch {p.batch}/{p.batches} · {format_duration(p.seconds_left)} left"


def settings_beyond_form(settings: TrainingSettings) -> str:
    """What a preset sets that the page's form does not show, in words ("" when all are the defaults).

    The form shows the architecture, epochs, batch size, augmentation and validation split."""
    defaults = TrainingSettings()
    parts = []
    if settings.learning_rate != defaults.learning_rate:
        parts.append(f"learning rate {settings.learning_rate:g}")
    if settings.schedule != defaults.schedule:
        parts.append(f"{settings.schedule} learning-rate schedule")
    if settings.members > 1:
        parts.append(f"{settings.members} networks trained and averaged")
    if settings.extra_sources:
        parts.append(f"also trains on {', '.join(settings.extra_sources)} (from $HANDWRITING_DATA)")
    parts += settings.synthetic
    if settings.base_model:
        parts.append(f"starts from the saved model '{settings.base_model}' (fine-tuning)")
    return ", ".join(parts)


def test_set_name(card: ModelCard) -> str:
    """The test set a card's error was measured on: ``"mnist (10,000 images)"``."""
    source = card.test_set.source or "unknown"
    name = Path(source.split(" (")[0]).name or source
    n = card.test_set.n_test
    return f"{name} ({n:,} images)" if n else name


def model_label(entry: StoredModel) -> str:
    """How the model selector shows a saved model: its name and measured test error."""
    if not entry.ok or entry.card is None:
        return f"{entry.name} · broken"
    error = entry.card.test_error
    measured = f"{error:.2f}% test error" if error is not None else "test error not measured"
    older = " · older preprocessing" if entry.card.older_preprocessing else ""
    return f"{entry.name} · {measured}{older}"


def card_facts(card: ModelCard) -> dict[str, str]:
    """The card in words, for a two-column table: architecture, parameters, errors, data, time, command."""
    t = card.training
    schedule = {"cosine": "cosine decay", "constant": "constant"}[t.resolved_schedule]
    settings = (
        f"{t.epochs} epochs, batch {t.batch_size}, learning rate {t.learning_rate:g} ({schedule}), "
        f"augmentation {'on' if t.augment else 'off'}"
        + (f", {t.members} networks averaged" if t.members > 1 else "")
    )
    validation = f"{card.validation_error:.2f}%" if card.validation_error is not None else "none held out"
    data = card.data
    extra = data.describe_extra()
    facts = {
        "Architecture": card.architecture,
        "Parameters": f"{card.parameters:,}",
        "Test error": f"{card.test_error:.2f}% on {test_set_name(card)}" if card.test_error is not None else "—",
        "Validation error": validation,
        "Training": settings,
        "Training data": f"{data.source or '?'}" + (f" + {extra}" if extra else "")
                         + f" ({data.n_train:,} training images)",
        "Data checksum": f"sha256 {data.sha256}",
        "Preprocessing": f"version {card.preprocessing}"
                         + (" (older than this page's: its extra training digits were normalised differently "
                            "from your drawings)" if card.older_preprocessing else ""),
        "Training time": format_duration(card.training_seconds),
        "Created": f"{card.created} (TensorFlow {card.tensorflow}, Keras {card.keras})",
    }
    if card.base_model is not None:
        b = card.base_model
        facts["Fine-tuned from"] = (f"{b.name} ({b.architecture}, test error "
                                    + (f"{b.test_error:.2f}%" if b.test_error is not None else "not measured")
                                    + f"; sha256 {b.keras_sha256[:12]}…)")
    return facts


def adaptation_summary(card: ModelCard) -> str:
    """What a fine-tune on someone's drawings measured (``card.adaptation``), in one sentence of plain text."""
    a, b = card.adaptation, card.base_model
    base = b.name if b is not None else "its base model"
    if a.accuracy_before is not None and a.accuracy_after is not None:
        held = (f"on the {a.held_back} of your drawings held back from it, {base} read {a.accuracy_before:.0f}% "
                f"right and {card.name} reads {a.accuracy_after:.0f}%")
    else:
        held = "too few drawings of each digit to hold any back (a digit needs 2), so no accuracy on your drawings "\
               "was measured"
    before = f"{b.test_error:.2f}% → " if b is not None and b.test_error is not None else ""
    mnist = (f"MNIST test error {before}{card.test_error:.2f}% ({card.test_set.n_test:,} test digits)"
             if card.test_error is not None else "MNIST test error not measured")
    return f"{card.name} is {base} adapted to {a.trained} of your {a.count} drawings: {held}; {mnist}."


def subtitle(card: ModelCard | None) -> str:
    """One line, true of the loaded model, on what reads the drawings: its architecture and training data."""
    if card is None:
        return "Draw a digit and a convolutional network reads it as you draw."
    source = Path(card.data.source).name if card.data.source else "an unnamed data set"
    main = "MNIST" if "mnist" in source.lower() else source
    extra = [s.name.replace("-", " ") for s in card.data.extra] or (
        [card.data.extra_source] if card.data.extra_source else [])
    data = main + (f" + {', '.join(extra)}" if extra else "")
    t = card.training
    what = f"{t.members} “{t.architecture}” CNNs averaged" if t.members > 1 else f"a “{t.architecture}” network"
    return f"Model “{card.name}” ({what}, trained on {data}) reads your handwriting as you draw."


def data_location() -> str:
    """Where training data comes from when nothing is uploaded: ``$MNIST_DATA`` or Keras' download."""
    source = resolve_source()
    return str(source) if source is not None else "Keras' copy (downloaded on first use)"


def folder_fingerprint(folder: str | os.PathLike) -> tuple:
    """Names, sizes and modification times of a folder's files: changes whenever a file does."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return ()
    found = []
    for entry in entries:
        try:  # a link that loops or points nowhere is no file of the store's; the listing says why
            if entry.is_file():
                found.append((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns))
        except OSError:
            found.append((entry.name, -1, -1))
    return tuple(found)


# --- uploads ----------------------------------------------------------------------------


def keep_upload(
    name: str, data: bytes, folder: str | os.PathLike, limit_mb: int = MAX_UPLOAD_MB
) -> tuple[Path, MnistData]:
    """Keep an uploaded Kaggle-format CSV in ``folder`` and load it as training data.

    Refuses a file over ``limit_mb`` or not named ``.csv`` before reading it.
    The bytes are written to a temporary file of this call's own, checked with
    :func:`~mnist_core.data.load_mnist`, and only then renamed into place under
    their checksum (so models trained on it can find their test set again; two
    users uploading the same file rename identical files). Raises
    :class:`~mnist_core.data.DataError` naming ``name`` and the problem (a full
    disk or a read-only folder included); a file that fails leaves nothing. Each
    upload kept must be given back with :func:`release_upload`.
    """
    if len(data) > limit_mb * 1024 * 1024:
        raise DataError(f"{name}: {len(data) / 1024 / 1024:.0f} MB is over the {limit_mb} MB upload limit")
    if not name.lower().endswith(".csv"):
        raise DataError(f"{name}: not a .csv file (expected a Kaggle train.csv: label,pixel0,...,pixel783)")
    folder = Path(os.path.abspath(folder))
    path = folder / f"upload-{hashlib.sha256(data).hexdigest()[:16]}.csv"
    temporary = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=UPLOAD_TEMP_PREFIX, suffix=".csv", dir=folder)
        with os.fdopen(descriptor, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        loaded = load_mnist(temporary)
        with _pending_lock:  # renamed and counted as pending at once: a prune never sees it unclaimed
            os.replace(temporary, path)
            _pending[path] += 1
    except DataError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise DataError(str(exc).replace(temporary, name)) from exc
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise DataError(f"{name}: could not store the upload in {folder}: {exc.strerror or exc}") from exc
    return path, dataclasses.replace(loaded, source=str(path))


# Uploads kept_upload returned and not yet released, by path: another session's may be the same file.
_pending: Counter[Path] = Counter()
_pending_lock = threading.Lock()


def release_upload(path: Path, started: bool, in_use: Collection[str | os.PathLike] = ()) -> bool:
    """Give back an upload :func:`keep_upload` returned; ``started``: a training on it started.

    An upload whose training did not start is deleted, unless another session
    holds the same file or it is ``in_use`` (the running training's data, a card's
    test set). Returns whether it was deleted.
    """
    path = Path(os.path.abspath(path))
    with _pending_lock:
        _pending[path] -= 1
        if _pending[path] <= 0:
            del _pending[path]
        if started or path in _pending or path in _absolute(in_use):
            return False
        path.unlink(missing_ok=True)
        return True


def prune_uploads(
    folder: str | os.PathLike, in_use: Collection[str | os.PathLike] = (),
    referenced: Collection[str | os.PathLike] = (), kept: int = UPLOADS_KEPT, kept_mb: float = UPLOADS_KEPT_MB,
) -> list[Path]:
    """Delete the oldest uploads in ``folder`` until the newest ``kept`` at most, ``kept_mb`` in all, are left.

    Never deletes one ``in_use`` (the running training's data) or held by a session
    that has not started its training yet; one that is ``referenced`` (a model's
    card names it as its test set: "Look inside" then says the test set is not
    reachable) only when no other can go. Temporary files older than
    :data:`STALE_UPLOAD_SECONDS` (a server killed while writing one) go too.
    Returns the uploads deleted.
    """
    folder = Path(os.path.abspath(folder))
    protected, named = _absolute(in_use), _absolute(referenced)
    removed = []
    with _pending_lock:
        try:
            for temporary in folder.glob(f"{UPLOAD_TEMP_PREFIX}*"):
                if time.time() - temporary.stat().st_mtime > STALE_UPLOAD_SECONDS:
                    temporary.unlink(missing_ok=True)
            uploads = [(p, p.stat()) for p in folder.glob("upload-*.csv")]
        except OSError:
            return removed
        uploads.sort(key=lambda upload: upload[1].st_mtime_ns)  # oldest first
        count, total = len(uploads), sum(info.st_size for _, info in uploads)
        deletable = [(p, info) for p, info in uploads if p not in protected and p not in _pending]
        for p, info in [u for u in deletable if u[0] not in named] + [u for u in deletable if u[0] in named]:
            if count <= kept and total <= kept_mb * 1024 * 1024:
                break
            try:
                p.unlink()
            except OSError:
                continue
            count, total = count - 1, total - info.st_size
            removed.append(p)
    return removed


def _absolute(paths: Collection[str | os.PathLike]) -> set[Path]:
    return {Path(os.path.abspath(p)) for p in paths if p}
