"""Real handwriting that is not MNIST: loaders for USPS, Semeion, optdigits, pendigits, CVL and BHMSDS.

These data sets test what a model trained on MNIST does with other people's
digits, and :func:`render_pen_digit` turns real pen trajectories into drawings
like those a user makes on the app's canvas. Each loader returns the data in
its natural form: images as uint8 arrays at their original size, labels as
uint8. The bitmaps (USPS, Semeion, optdigits) have ink high on a 0 background,
as in MNIST; the scans and photos (CVL, BHMSDS) are as written, dark ink on
light paper, which :func:`~mnist_core.preprocessing.to_mnist` reads as it reads
any photo. Malformed files raise :class:`~mnist_core.data.DataError` naming the
file and line (or zip member); nothing half-loaded is returned.

The files are described in ``shared/README.md``; the folder is found through
the ``HANDWRITING_DATA`` environment variable in the tests.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from mnist_core.data import DataError, read_bytes

PEN_BOX = 500  # pendigits coordinates lie in a 500x500 box, y pointing up

# The benchmark protocol of random_canvas_drawing: how people draw on a 280-pixel canvas.
RANDOM_STROKE_WIDTH = (12, 28)  # pixels, inclusive
RANDOM_HEIGHT_FRACTION = (0.45, 0.85)

CVL_ZIP = "cvl-single-digits-train-valid.zip"
CVL_SPLITS = ("train", "valid")  # 67 and 60 writers, none in both
BHMSDS_ZIP = "bhmsds.zip"
# pendigits' 30 writers, split once and for all: the first 15 may be trained on,
# the others are the robustness benchmark's (never trained on).
PENDIGITS_TRAINING_WRITERS = range(1, 16)

_CVL_MEMBER = re.compile(r"^database/(train|valid)/(\d)-(\d{4})(?:-\d+)+\.png$")
_BHMSDS_DIGIT = re.compile(r"^symbols/(\d)-\d+\.png$")
_BHMSDS_SYMBOL = re.compile(r"^symbols/(dot|minus|plus|slash|w|x|y|z)-(\d+)\.png$")
BHMSDS_SYMBOLS = ("dot", "minus", "plus", "slash", "w", "x", "y", "z")  # its non-digits, 1,500 of each
_SEGMENT = re.compile(r'^\.SEGMENT\s+DIGIT\s+(\d+)(?:-(\d+))?\s+\?\s+"(\d)"\s*$')


@dataclass(frozen=True)
class PenDigit:
    """One digit written on a tablet: its label, writer (1-30) and strokes.

    Each stroke is a (k, 2) float array of (x, y) points in screen coordinates:
    x to the right, y downwards, in the tablet's 500x500 box.
    """

    label: int
    writer: int
    strokes: list[np.ndarray]


# --- loaders -----------------------------------------------------------------


def load_usps(folder: str | os.PathLike, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """USPS digits from ``folder/zip.{split}.gz``: images (N, 16, 16) uint8 and labels (N,) uint8.

    The file's values in [-1, 1] (-1 is background) become 0-255, ink high.
    ``split`` is ``"test"`` (2,007 digits) or ``"train"`` (7,291).
    """
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    folder = Path(folder)
    path = folder / f"zip.{split}.gz"
    if not path.is_file() and (folder / f"zip.{split}").is_file():
        path = folder / f"zip.{split}"
    images, labels = [], []
    for number, line in _lines(path):
        values = _numbers(line, path, number)
        if len(values) != 257:
            raise DataError(f"{path}, line {number}: {len(values)} values, expected a label and 256 pixels")
        labels.append(_digit_label(values[0], path, number))
        pixels = values[1:]
        if not np.isfinite(pixels).all() or pixels.min() < -1.0 or pixels.max() > 1.0:
            raise DataError(f"{path}, line {number}: pixel values outside [-1, 1]")
        images.append(np.rint((pixels + 1.0) * 127.5).astype(np.uint8).reshape(16, 16))
    return _stacked(images, labels, path)


def load_semeion(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Semeion digits from ``folder/semeion.data``: images (N, 16, 16) uint8 (0 or 255) and labels (N,) uint8.

    Each line holds 256 binary pixels then the label as 10 one-hot columns.
    """
    path = Path(folder) / "semeion.data"
    images, labels = [], []
    for number, line in _lines(path):
        values = _numbers(line, path, number)
        if len(values) != 266:
            raise DataError(f"{path}, line {number}: {len(values)} values, expected 256 pixels and 10 label columns")
        pixels, one_hot = values[:256], values[256:]
        if not np.isin(pixels, (0.0, 1.0)).all():
            raise DataError(f"{path}, line {number}: pixels must be 0 or 1")
        if not np.isin(one_hot, (0.0, 1.0)).all() or one_hot.sum() != 1:
            raise DataError(f"{path}, line {number}: the last 10 columns must hold a single 1 (the label)")
        labels.append(int(np.argmax(one_hot)))
        images.append((pixels.reshape(16, 16) * 255).astype(np.uint8))
    return _stacked(images, labels, path)


def load_optdigits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """UCI optdigits bitmaps (``optdigits-orig.tra`` or ``.windep``): images (N, 32, 32) uint8 (0 or 255), labels.

    The header's ``entwidth``, ``entheight`` and ``ntot`` give the bitmap size and
    the number of digits; each digit is ``entheight`` lines of '0'/'1' then its label.
    """
    path = Path(path)
    lines = list(_lines(path))
    start = 0  # the first bitmap line; the header ("key = value" lines) comes before it
    while start < len(lines) and not set(lines[start][1].strip()) <= {"0", "1"}:
        start += 1
    if start == len(lines):
        raise DataError(f"{path}: no bitmaps found after the header")
    header: dict[str, str] = {}
    for _, line in lines[:start]:
        if "=" in line:
            key, value = line.split("=", 1)
            header[key.strip()] = value.strip()
    try:
        width, height = int(header.get("entwidth", 32)), int(header.get("entheight", 32))
        expected = int(header["ntot"]) if "ntot" in header else None
    except ValueError as exc:
        raise DataError(f"{path}: header values entwidth, entheight and ntot must be whole numbers ({exc})") from exc

    images, labels = [], []
    body = lines[start:]
    if body and body[-1][1].strip() == "EOF":  # some copies end with an 'EOF' marker line
        body = body[:-1]
    for first in range(0, len(body), height + 1):
        block = body[first : first + height + 1]
        if len(block) < height + 1:
            raise DataError(f"{path}, line {block[0][0]}: truncated digit ({len(block)} lines, expected {height + 1})")
        rows = []
        for number, line in block[:height]:
            row = line.strip()
            if len(row) != width or not set(row) <= {"0", "1"}:
                raise DataError(f"{path}, line {number}: expected {width} characters '0' or '1', got {row[:40]!r}")
            rows.append([c == "1" for c in row])
        number, line = block[height]
        labels.append(_digit_label(_numbers(line, path, number)[0], path, number))
        images.append(np.array(rows, dtype=np.uint8) * 255)
    if expected is not None and len(images) != expected:
        raise DataError(f"{path}: {len(images)} digits, but the header says ntot = {expected}")
    return _stacked(images, labels, path)


def load_pendigits(path: str | os.PathLike) -> list[PenDigit]:
    """Pen trajectories from UCI's UNIPEN file (``pendigits-orig.tra``), y flipped to point down."""
    path = Path(path)
    digits: list[PenDigit] = []
    label = writer = expected_strokes = None
    strokes: list[np.ndarray] = []
    points: list[tuple[int, int]] | None = None  # the stroke being read, between PEN_DOWN and PEN_UP
    segment_line = 0

    def finish_digit() -> None:
        if label is None:
            return
        if len(strokes) != expected_strokes:
            raise DataError(
                f"{path}, line {segment_line}: digit declares {expected_strokes} strokes but has {len(strokes)}"
            )
        if writer is None:
            raise DataError(f"{path}, line {segment_line}: digit has no '.COMMENT label writer n' line")
        digits.append(PenDigit(label=label, writer=writer, strokes=list(strokes)))

    for number, line in _lines(path):
        text = line.strip()
        if points is not None and not text.startswith("."):
            pair = text.split()
            if len(pair) != 2 or not all(p.lstrip("-").isdigit() for p in pair):
                raise DataError(f"{path}, line {number}: expected an 'x y' pair of whole numbers, got {text!r}")
            points.append((int(pair[0]), int(pair[1])))
        elif text.startswith(".SEGMENT"):
            if points is not None:
                raise DataError(f"{path}, line {number}: .SEGMENT inside a stroke (missing .PEN_UP)")
            finish_digit()
            match = _SEGMENT.match(text)
            if match is None:
                raise DataError(f'{path}, line {number}: expected \'.SEGMENT DIGIT k[-m] ? "L"\', got {text!r}')
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            label, writer, expected_strokes = int(match.group(3)), None, last - first + 1
            strokes, segment_line = [], number
        elif text.startswith(".COMMENT") and label is not None and writer is None:
            fields = text.split()
            if len(fields) < 3 or not fields[2].isdigit() or fields[1] != str(label):
                raise DataError(f"{path}, line {number}: expected '.COMMENT {label} writer n', got {text!r}")
            writer = int(fields[2])
        elif text == ".PEN_DOWN":
            if label is None or points is not None:
                raise DataError(f"{path}, line {number}: .PEN_DOWN outside a digit or inside a stroke")
            points = []
        elif text == ".PEN_UP":
            if not points:
                raise DataError(f"{path}, line {number}: .PEN_UP without a .PEN_DOWN and points before it")
            xy = np.array(points, dtype=np.float64)
            xy[:, 1] = PEN_BOX - xy[:, 1]
            strokes.append(xy)
            points = None
        elif text and not text.startswith("."):
            raise DataError(f"{path}, line {number}: unexpected {text[:40]!r} outside a stroke")
    if points is not None:
        raise DataError(f"{path}: ends inside a stroke (missing .PEN_UP)")
    finish_digit()
    if not digits:
        raise DataError(f"{path}: no digits found (expected UNIPEN '.SEGMENT DIGIT' records)")
    return digits


def load_cvl(folder: str | os.PathLike, split: str = "valid") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CVL Single Digit images from ``folder/cvl-single-digits-train-valid.zip``: images, labels and writers.

    Images are (N, 28, 28) uint8 as scanned (dark ink on light grey); writers are
    the (N,) ids of who wrote each digit. ``split`` is ``"valid"`` (7,000 digits,
    60 writers: the benchmark) or ``"train"`` (7,000, 67 other writers).
    """
    if split not in CVL_SPLITS:
        raise ValueError(f"split must be one of {', '.join(CVL_SPLITS)}, got {split!r}")
    path = Path(folder) / CVL_ZIP
    images, labels, writers = [], [], []
    for member, image in _zip_pngs(path, _CVL_MEMBER, lambda m: m.group(1) == split):
        match = _CVL_MEMBER.match(member)
        images.append(image)
        labels.append(int(match.group(2)))
        writers.append(int(match.group(3)))
    return (*_stacked(images, labels, path), np.array(writers, dtype=np.int32))


def load_bhmsds(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The digits of the Basic Handwritten Math Symbols Dataset (``folder/bhmsds.zip``): images and labels.

    Images are (15000, 28, 28) uint8 as photographed (black ink on white, each
    digit filling the image's height); its other symbols are left out.
    """
    path = Path(folder) / BHMSDS_ZIP
    images, labels = [], []
    for member, image in _zip_pngs(path, _BHMSDS_DIGIT):
        images.append(image)
        labels.append(int(_BHMSDS_DIGIT.match(member).group(1)))
    return _stacked(images, labels, path)


def load_bhmsds_symbols(folder: str | os.PathLike, names: tuple[str, ...] = BHMSDS_SYMBOLS
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BHMSDS' non-digit symbols ``names`` (of :data:`BHMSDS_SYMBOLS`): images, names and file ids.

    Images are (N, 28, 28) uint8 as photographed, like :func:`load_bhmsds`' digits;
    names are strings such as ``"plus"``; ids (0-1499) are the number in each file's name.
    """
    unknown = sorted(set(names) - set(BHMSDS_SYMBOLS))
    if unknown or not names:
        raise ValueError(f"BHMSDS symbols are {', '.join(BHMSDS_SYMBOLS)}; got {', '.join(unknown) or 'none'}")
    path = Path(folder) / BHMSDS_ZIP
    found = _zip_pngs(path, _BHMSDS_SYMBOL, lambda m: m.group(1) in names)
    matches = [_BHMSDS_SYMBOL.match(member) for member, _ in found]
    return (np.stack([image for _, image in found]), np.array([m.group(1) for m in matches]),
            np.array([int(m.group(2)) for m in matches], dtype=np.int32))


# --- drawing like a user on the canvas -------------------------------------------


def canvas_points(
    digit: PenDigit,
    canvas_size: int = 280,
    height_fraction: float = 0.65,
    centre: tuple[float, float] | None = None,
    stroke_width: float = 18,
) -> list[np.ndarray]:
    """The digit's strokes in canvas pixel coordinates, as a person would draw them.

    The digit is scaled, keeping its aspect ratio, so that the longer side of its
    bounding box (nearly always its height) is ``height_fraction`` of the canvas,
    and placed with the box's centre at ``centre`` (x, y), by default the canvas
    centre. The centre is moved, if needed, so that strokes of ``stroke_width``
    stay inside the canvas.
    """
    if not 0.0 < height_fraction <= 1.0:
        raise ValueError(f"height_fraction must be in (0, 1], got {height_fraction}")
    points = np.concatenate(digit.strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = _scale(digit, canvas_size, height_fraction)
    half_extent = _half_extent(digit, canvas_size, height_fraction, stroke_width)
    wanted = np.array(centre if centre is not None else (canvas_size / 2.0, canvas_size / 2.0), dtype=np.float64)
    # Inside means within [half_extent, canvas_size - half_extent]; if the digit is too big, centre it.
    placed = np.where(
        half_extent * 2.0 >= canvas_size, canvas_size / 2.0, np.clip(wanted, half_extent, canvas_size - half_extent)
    )
    middle = (low + high) / 2.0
    return [(stroke - middle) * scale + placed for stroke in digit.strokes]


def render_pen_digit(
    digit: PenDigit,
    canvas_size: int = 280,
    stroke_width: int = 18,
    height_fraction: float = 0.65,
    centre: tuple[float, float] | None = None,
    ink: tuple[int, int, int, int] = (255, 255, 255, 255),
    background: tuple[int, int, int, int] = (0, 0, 0, 255),
) -> np.ndarray:
    """Draw the digit on a square canvas, as a person would: an RGBA uint8 array.

    Strokes are round-capped, round-joined lines of ``stroke_width`` pixels
    (lines, plus a disc at every point). Placement follows :func:`canvas_points`.
    A ``background`` with alpha 0 gives a transparent canvas.
    """
    canvas = Image.new("RGBA", (canvas_size, canvas_size), tuple(background))
    _draw_strokes(ImageDraw.Draw(canvas), canvas_points(digit, canvas_size, height_fraction, centre, stroke_width),
                  stroke_width, ink)
    return np.array(canvas)


def random_canvas_drawing(digit: PenDigit, rng: np.random.Generator, canvas_size: int = 280) -> np.ndarray:
    """Draw the digit the way the benchmark protocol has users draw: white on black, RGBA uint8.

    Stroke width uniform in 12-28 pixels, the digit's taller side 45-85% of the
    canvas, at a uniformly random position with the whole drawing inside.
    """
    width = int(rng.integers(RANDOM_STROKE_WIDTH[0], RANDOM_STROKE_WIDTH[1] + 1))
    fraction = float(rng.uniform(*RANDOM_HEIGHT_FRACTION))
    half_extent = _half_extent(digit, canvas_size, fraction, width)
    centre = rng.uniform(half_extent, np.maximum(canvas_size - half_extent, half_extent))
    return render_pen_digit(digit, canvas_size, width, fraction, (float(centre[0]), float(centre[1])))


def render_pen_number(
    digits: list[PenDigit],
    height: int = 280,
    stroke_width: int = 18,
    height_fraction: float = 0.65,
    gaps: list[float] | float = 0.25,
    sizes: list[float] | None = None,
    ink: tuple[int, int, int, int] = (255, 255, 255, 255),
    background: tuple[int, int, int, int] = (0, 0, 0, 255),
) -> np.ndarray:
    """Draw several digits side by side, left to right, on a canvas ``height`` tall and as wide as they need.

    Each digit is scaled, keeping its aspect ratio, to ``height_fraction`` of the
    height times its entry of ``sizes`` (default all 1), and vertically centred.
    ``gaps`` (one for all, or one per pair) is the space between neighbouring
    digits' ink as a fraction of the digits' height: 0 makes their boxes touch,
    a negative gap overlaps them. Strokes as :func:`render_pen_digit` draws them.
    """
    sizes = [1.0] * len(digits) if sizes is None else list(sizes)
    gaps = [gaps] * (len(digits) - 1) if np.isscalar(gaps) else list(gaps)
    if not digits or len(sizes) != len(digits) or len(gaps) != len(digits) - 1:
        raise ValueError(f"expected at least one digit, a size per digit and a gap per pair; got {len(digits)} "
                         f"digits, {len(sizes)} sizes, {len(gaps)} gaps")
    tall = height_fraction * height
    placed, right = [], stroke_width  # each digit's strokes, in canvas pixels; where the next one may start
    for i, (digit, size) in enumerate(zip(digits, sizes, strict=True)):
        points = np.concatenate(digit.strokes)
        low, high = points.min(axis=0), points.max(axis=0)
        scale = size * tall / max(float(high[1] - low[1]), 1.0)
        left = right + (gaps[i - 1] * tall if i else 0.0)
        corner = np.array([low[0], (low[1] + high[1]) / 2.0])  # the digit's left edge, half-way down
        offset = np.array([left + stroke_width / 2.0, height / 2.0]) - corner * scale
        placed.append([stroke * scale + offset for stroke in digit.strokes])
        right = left + float(high[0] - low[0]) * scale + stroke_width
    canvas = Image.new("RGBA", (int(np.ceil(right + stroke_width)), height), tuple(background))
    draw = ImageDraw.Draw(canvas)
    for strokes in placed:
        _draw_strokes(draw, strokes, stroke_width, ink)
    return np.array(canvas)


def _draw_strokes(draw: ImageDraw.ImageDraw, strokes: list[np.ndarray], stroke_width: float,
                  ink: tuple[int, int, int, int]) -> None:
    """Round-capped, round-joined lines of ``stroke_width`` pixels: lines, plus a disc at every point."""
    radius = stroke_width / 2.0
    for stroke in strokes:
        xy = [(float(x), float(y)) for x, y in stroke]
        if len(xy) > 1:
            draw.line(xy, fill=tuple(ink), width=int(stroke_width), joint="curve")
        for x, y in xy:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=tuple(ink))


def _scale(digit: PenDigit, canvas_size: int, height_fraction: float) -> float:
    """Canvas pixels per tablet unit, for the digit's longer side to be ``height_fraction`` of the canvas."""
    points = np.concatenate(digit.strokes)
    longer = float((points.max(axis=0) - points.min(axis=0)).max())
    return height_fraction * canvas_size / max(longer, 1.0)  # a single dot has no size to scale


def _half_extent(digit: PenDigit, canvas_size: int, height_fraction: float, stroke_width: float) -> np.ndarray:
    """Half the width and height of the drawn digit, in canvas pixels, ink included."""
    points = np.concatenate(digit.strokes)
    size = points.max(axis=0) - points.min(axis=0)
    return size * _scale(digit, canvas_size, height_fraction) / 2.0 + stroke_width / 2.0


# --- helpers ---------------------------------------------------------------------


def _lines(path: Path):
    """Numbered non-empty lines of a text file, gzipped or not."""
    try:
        text = read_bytes(path).decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from exc
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _zip_pngs(path: Path, pattern: re.Pattern, wanted=lambda match: True):
    """(member name, greyscale uint8 array) of every member of the zip at ``path`` matching ``pattern`` and ``wanted``.

    All are read before any is returned, so a damaged archive or image is one
    DataError naming it, and nothing half-loaded is used.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(n for n in archive.namelist() if (m := pattern.match(n)) and wanted(m))
            if not members:
                raise DataError(f"{path}: holds no file named like {pattern.pattern}")
            found = []
            for member in members:
                try:
                    with Image.open(io.BytesIO(archive.read(member))) as im:
                        found.append((member, np.array(im.convert("L"))))
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                    raise DataError(f"{path}: member {member} is not a readable PNG ({exc})") from exc
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a zip archive or damaged ({exc})") from exc
    except (zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc
    return found


def _numbers(line: str, path: Path, number: int) -> np.ndarray:
    try:
        return np.array(line.replace(",", " ").split(), dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}, line {number}: not all values are numbers ({exc})") from exc


def _digit_label(value: float, path: Path, number: int) -> int:
    if not np.isfinite(value) or value != int(value) or not 0 <= value <= 9:
        raise DataError(f"{path}, line {number}: label {value:g} is not a digit 0-9")
    return int(value)


def _stacked(images: list[np.ndarray], labels: list[int], path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not images:
        raise DataError(f"{path}: no digits found")
    return np.stack(images), np.array(labels, dtype=np.uint8)
