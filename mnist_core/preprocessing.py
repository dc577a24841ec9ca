"""From a drawing or an image to a 28x28 MNIST-style digit, the way MNIST was made.

MNIST's digits were scanned, cropped, scaled so that the longer side of the
digit fills a 20x20 box (keeping the aspect ratio, anti-aliased into grey
levels) and pasted into a 28x28 field with the centre of mass at the centre.
:func:`to_mnist` does the same to anything a user gives the app:

1. **ink**: the background colour is estimated from the image's border (the
   median colour of its outermost pixels, or of its corners when the digit
   covers half the border); each pixel's ink is its distance from
   that colour (the largest difference over the colour channels), stretched so
   the strongest ink is 255, with faint noise dropped. Either polarity and any
   colours work. In an RGBA image with transparent pixels, those are the
   background: the image is composited onto black or white, whichever contrasts
   more with what is drawn (a browser canvas with no background colour).
2. **cropped**: the bounding box of the ink.
3. **stroke width**: strokes thicker than MNIST's typical width relative to the
   digit's size are thinned to it (a thick pen on a small digit), without
   cutting any stroke in two; thinner ones are left as drawn.
4. **fitted 20x20**: the longer side is scaled to 20 pixels, keeping the aspect
   ratio, anti-aliased, and the strongest pixel made 255, as in MNIST.
5. **centred 28x28**: pasted into 28x28 with the centre of mass at pixel (14, 14)
   (row, column), shifting by the rounded offset, as MNIST did.

Nothing drawn, or only a speck, gives ``blank=True`` and an all-zero image; see
:data:`MIN_CONTRAST` and :data:`MIN_DIGIT_FRACTION`.

:func:`read_image` reads a PNG, JPEG or other image file into an array that
:func:`to_mnist` accepts, refusing files that are not images or are too large;
:func:`read_png` does the same for PNG bytes a client sent (the page's canvas),
refusing any larger than the caller's bound from their header alone. Pictures of
paper (files and uploads, not the canvas) first have uneven lighting evened out
(:func:`even_out_lighting`), which step 1 alone cannot undo: with the light
falling off across a photo, the paper's far side is as dark as the ink.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError
from scipy import ndimage

# Raised whenever to_mnist's output changes for the same input, so a model's card
# can say which preprocessing its training digits went through (models trained
# on another version are marked). 1: until 2026-11; 2: the stroke-width step
# keeps every stroke whole (stroke_mask) and only thins.
PREPROCESSING_VERSION = 2

MNIST_SIZE = 28
DIGIT_BOX = 20  # MNIST scaled each digit's longer side to 20 pixels ...
CENTRE = 14.0  # ... and put its centre of mass at pixel (14, 14) of the 28x28 field

# A drawing is blank when its strongest ink stands out from the background (and
# its noise) by less than this fraction of the full range (10% = 26 grey levels):
# nothing was drawn, or what is there is noise (JPEG artefacts, paper texture).
MIN_CONTRAST = 0.10
# Ink weaker than this fraction of the strongest ink, or than NOISE_MULTIPLE times
# the median distance of the border's pixels from the background colour (noise
# on a photo), is treated as background, so that noise does not stretch the
# digit's bounding box.
NOISE_FLOOR = 0.10
NOISE_MULTIPLE = 8
# When the border's pixels are, at the median, this far from their median colour,
# the border is not background with noise but part ink, part background (a digit
# filling its frame), and the background colour is taken from the corners instead.
# (As noise, NOISE_MULTIPLE times this would wipe out all but the strongest ink.)
SPLIT_BORDER_DISTANCE = 24

# A drawing is blank when the longer side of its ink's bounding box is shorter
# than this fraction of the image's longer side: a speck (a tap of the pen, a
# stray dot), not a digit. On a 280-pixel canvas that is 28 pixels, a dot of a
# 28-pixel pen; people draw digits at half the canvas' height or more.
MIN_DIGIT_FRACTION = 0.10

# Stroke widths are measured and adjusted with the digit scaled to this size
# (its longer side, in pixels): three times MNIST's 20-pixel box.
WORK_SIZE = 60
# MNIST's typical stroke width relative to the digit's longer side: the median
# over the training set, measured with :func:`stroke_width` at WORK_SIZE (run
# benchmarks/bench_preprocessing.py --mnist-widths; the 10th-90th percentiles
# are 0.079-0.147). Drawings with thicker strokes are thinned to it; thinner ones
# are left alone (see _normalise_stroke_width for why).
MNIST_RELATIVE_WIDTH = 0.105
# Strokes wider than this fraction of the digit's longer side (three times MNIST's
# typical width: a thick pen on a small digit) fill the digit's holes and gaps, and
# no normalisation brings them back. The default model reads pen digits drawn so
# far worse: ~98% right below 0.25, 95% at 0.25-0.30, 88% at 0.30-0.35, 58% at
# 0.35-0.40 (benchmarks/bench_stroke_thickness.py). The page then says so.
THICK_STROKES = 0.30
# The levels, as fractions of the strongest ink, tried in turn for the stroke mask the
# stroke-width step redraws (stroke_mask): half-maximum first (a solid stroke's edge),
# lower ones for thin, faint ink until no stroke is cut. The last is the ink that
# counts as a stroke; connected specks smaller than MIN_STROKE_PIXELS (at WORK_SIZE) are noise.
STROKE_LEVELS = (0.5, 0.4, 0.3, 0.2, 0.15)
MIN_STROKE_PIXELS = 4
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)

# Larger inputs are first shrunk (box average) below this longer side, which keeps
# a photo's digit sharp enough while bounding the time taken.
MAX_INPUT_SIDE = 1024
# read_image refuses images with more pixels than this (50 megapixels), before
# decoding them: a decompression bomb must not exhaust memory.
MAX_IMAGE_PIXELS = 50_000_000
# even_out_lighting fits the paper's brightness on a copy this many pixels on its longer side, and
# evens it out only where it varies by more than UNEVEN_LIGHTING grey levels: a canvas, a scan or an
# evenly lit photo is returned unchanged. Without it, light falling off by 16-32 levels across a photo
# already loses many digits, 64 nearly all; with it, they are read about as well as in even light
# (benchmarks/bench_lighting.py).
LIGHTING_SAMPLE_SIDE = 64
UNEVEN_LIGHTING = 6
# A PNG starts with this signature, then its IHDR chunk: length, b"IHDR", width, height (big-endian).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An image file cannot be used; the message names the file and says why."""


@dataclass(frozen=True)
class Preprocessed:
    """The 28x28 digit (uint8, ink high on 0, like MNIST) and how it was made.

    ``blank`` is True when nothing, or only a speck, was drawn; ``image`` is then
    all zeros. ``steps`` holds the intermediate images, in order, for display
    (uint8 greyscale, ink high).
    """

    image: np.ndarray
    blank: bool
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    # The drawing's stroke width as a fraction of the digit's longer side (MNIST's
    # median: 0.105); None when not measured (blank, or the stroke-width step skipped).
    relative_stroke_width: float | None = None

    @property
    def thick_strokes(self) -> bool:
        """True when the strokes are too thick for the digit's size to be read reliably."""
        return self.relative_stroke_width is not None and self.relative_stroke_width > THICK_STROKES


def to_mnist(image: np.ndarray, *, normalise_width: bool = True) -> Preprocessed:
    """Turn a drawing or photo of one digit into a 28x28 MNIST-style image.

    ``image`` is a numpy array HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA), uint8 or
    float in [0, 1], of any size, colours and polarity. ``normalise_width=False``
    skips the stroke-width step (for comparison).
    """
    picture = _as_pillow(image)
    ink = _ink(picture)
    steps = {"ink": np.asarray(ink)}
    box = ink.getbbox()
    if box is None or max(box[2] - box[0], box[3] - box[1]) < MIN_DIGIT_FRACTION * max(picture.size):
        return _blank(steps)

    digit = ink.crop(box)
    steps["cropped"] = np.asarray(digit)
    relative_width = None
    if normalise_width:
        work = _scale_longer_side(digit, WORK_SIZE, Image.Resampling.BOX)
        relative_width = stroke_width(np.asarray(work, dtype=np.float32)) / max(work.size)
        digit = _normalise_stroke_width(work, relative_width)
        steps["stroke width"] = np.asarray(digit)

    fitted = np.asarray(_scale_longer_side(digit, DIGIT_BOX, Image.Resampling.LANCZOS), dtype=np.float32)
    if fitted.max() <= 0:
        return _blank(steps)
    fitted = fitted * (255.0 / fitted.max())
    steps["fitted 20x20"] = _to_uint8(fitted)

    centred = centre_by_mass(fitted)
    steps["centred 28x28"] = centred
    return Preprocessed(image=centred, blank=False, steps=steps, relative_stroke_width=relative_width)


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file (PNG, JPEG, BMP, GIF, WebP, ...) into a uint8 array.

    Returns HxW for greyscale, HxWx3 for colour and HxWx4 when the image has
    transparency; EXIF rotation is applied. Raises :class:`ImageError` for a
    missing, empty or unreadable file, one that is not a regular file, or one
    larger than ``max_pixels``.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, expected an image file (PNG, JPEG, ...)")
    if not path.is_file():  # never opened: reading a FIFO would wait for a writer forever
        raise ImageError(f"{path}: is not a regular file (a FIFO, socket or device), expected an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file, expected an image (PNG, JPEG, ...)")
    return even_out_lighting(_decode(path, str(path), max_pixels))


def read_image_bytes(data: bytes, name: str = "image", *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image a user uploaded (PNG, JPEG, ...; ``name`` is how errors call it) as :func:`read_image`
    reads a file: EXIF rotation applied, lighting evened out; :class:`ImageError` for an empty, unreadable or
    too large image."""
    if not data:
        raise ImageError(f"{name}: empty file, expected an image (PNG, JPEG, ...)")
    return even_out_lighting(_decode(io.BytesIO(data), name, max_pixels))


def even_out_lighting(image: np.ndarray) -> np.ndarray:
    """``image`` with the paper's uneven brightness (a photo's fall-off of light, a vignette) evened out.

    The paper's brightness is modelled as a smooth surface (a quadratic in the pixel's position), fitted to
    a small copy of the picture by least squares, again and again leaving out the pixels far darker than
    the surface (the ink; far lighter, for light ink on a dark board). Each pixel is then divided by the
    surface, so the paper becomes uniform and the ink keeps its contrast to the paper around it. Returns
    ``image`` itself, unchanged, when the surface varies by at most :data:`UNEVEN_LIGHTING` grey levels
    or the image has transparency (a drawing); otherwise a greyscale uint8 image of the same size.
    """
    if image.ndim == 3 and image.shape[2] == 4:
        return image
    picture = Image.fromarray(image).convert("L")
    width, height = picture.size
    factor = LIGHTING_SAMPLE_SIDE / max(width, height)
    small = picture.resize((max(8, round(width * factor)), max(8, round(height * factor))), Image.BOX)
    levels = np.asarray(small, np.float64)
    middle = float(np.median(levels))
    ink_sign = 1.0 if middle - levels.min() > levels.max() - middle else -1.0  # +1: dark ink (paper is most)
    rows, columns = np.mgrid[0:levels.shape[0], 0:levels.shape[1]]
    terms = _surface_terms(rows / levels.shape[0], columns / levels.shape[1])
    surface = np.full(levels.shape, middle)  # first guess: flat paper, as bright as the median pixel
    for _ in range(5):
        below = ink_sign * (surface - levels)  # how much darker than the paper (lighter, for light ink)
        spread = 1.4826 * np.median(np.abs(below))  # the paper's own noise (a robust sigma: ink is the few)
        paper = below < max(8.0, 3 * spread)
        coefficients = np.linalg.lstsq(terms[paper], levels[paper], rcond=None)[0]
        surface = terms @ coefficients
    if np.ptp(surface) <= UNEVEN_LIGHTING:
        return image
    rows, columns = np.ogrid[0:height, 0:width]
    full = _surface_terms(rows / height, columns / width, coefficients)
    grey = np.asarray(picture, np.float32)
    if ink_sign > 0:
        evened = grey / np.maximum(full, 1) * 255
    else:
        evened = 255 - (255 - grey) / np.maximum(255 - full, 1) * 255
    return np.rint(np.clip(evened, 0, 255)).astype(np.uint8)


def _surface_terms(y: np.ndarray, x: np.ndarray, coefficients: np.ndarray | None = None) -> np.ndarray:
    """The quadratic surface's terms (1, x, y, x², xy, y²) at ``y``, ``x`` (each in [0, 1)); with
    ``coefficients``, the surface itself (broadcast: a column of ``y`` and a row of ``x`` give the image)."""
    if coefficients is None:
        return np.stack([np.ones(x.shape), x, y, x * x, x * y, y * y], axis=-1)
    c = coefficients.astype(np.float32)
    y, x = y.astype(np.float32), x.astype(np.float32)
    return c[0] + c[1] * x + c[2] * y + c[3] * x * x + c[4] * x * y + c[5] * y * y


def png_size(data: bytes, name: str = "image") -> tuple[int, int]:
    """The width and height a PNG's header (its IHDR chunk) declares, read from ``data`` without decoding it."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ImageError(f"{name}: not a PNG image ({len(data):,} bytes without a PNG header)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def read_png(data: bytes, *, max_width: int, max_height: int, name: str = "image") -> np.ndarray:
    """Decode PNG bytes a client sent into a uint8 array, as :func:`read_image` does a file.

    Refuses, from the header alone (:func:`png_size`), an image wider than
    ``max_width`` or taller than ``max_height``: a client can send any PNG, and
    a small one can declare a huge image. Raises :class:`ImageError` naming ``name``.
    """
    width, height = png_size(data, name)
    if width > max_width or height > max_height:
        raise ImageError(f"{name}: PNG of {width}x{height} pixels, larger than the {max_width}x{max_height} "
                         "accepted; not decoded")
    return _decode(io.BytesIO(data), name, max_width * max_height, formats=("PNG",))


def _decode(source, name: str, max_pixels: int, formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Decode an image file or stream checked to be at most ``max_pixels`` by its header; ImageError naming ``name``."""
    try:
        with Image.open(source, formats=formats) as im:  # reads only the header
            width, height = im.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: image is {width}x{height} = {width * height:,} pixels, more than the "
                    f"{max_pixels:,} accepted; shrink or crop it first"
                )
            im = ImageOps.exif_transpose(im)
            return np.array(_to_standard_mode(im))
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image file Pillow can read (use PNG, JPEG, BMP, GIF or WebP)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{name}: image is far larger than the {max_pixels:,} pixels accepted ({exc}); shrink or crop it first"
        ) from exc
    except (OSError, SyntaxError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from exc
    except ValueError as exc:  # Pillow's own limits, e.g. a text chunk that decompresses to more than 1 MB
        raise ImageError(f"{name}: refused by Pillow's limits on image files ({exc})") from exc


def stroke_width(ink: np.ndarray) -> float:
    """Estimate the mean stroke width, in pixels, of a greyscale digit (ink high).

    A stroke of width w and length L holds ink w * L and has edges 2 * L long,
    so w = 2 * ink / edge length. The edge length is the total gradient of the
    ink, which counts anti-aliased, sub-pixel edges correctly; ink and gradient
    scale alike, so the ink's overall level does not matter.
    """
    ink = np.pad(np.asarray(ink, dtype=np.float32), 1)
    # Differences along x and y, both taken at the corners between four pixels.
    dx, dy = np.diff(ink, axis=1), np.diff(ink, axis=0)
    edge = np.hypot(dx[:-1] + dx[1:], dy[:, :-1] + dy[:, 1:]).sum() / 2.0
    return float(2.0 * ink.sum() / edge) if edge > 0 else 0.0


def centre_by_mass(fitted: np.ndarray) -> np.ndarray:
    """Paste a fitted digit (at most 28x28, float, ink high) into 28x28 uint8, its centre of mass nearest (14, 14).

    It shifts by whole pixels, as MNIST did.
    """
    height, width = fitted.shape
    total = fitted.sum()
    rows = (fitted.sum(axis=1) * np.arange(height)).sum() / total
    cols = (fitted.sum(axis=0) * np.arange(width)).sum() / total
    # Keep the whole digit inside the field even when its mass is far off-centre.
    top = min(max(int(round(CENTRE - rows)), 0), MNIST_SIZE - height)
    left = min(max(int(round(CENTRE - cols)), 0), MNIST_SIZE - width)
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.uint8)
    out[top : top + height, left : left + width] = _to_uint8(fitted)
    return out


# --- steps ------------------------------------------------------------------


def _as_pillow(image: np.ndarray) -> Image.Image:
    """Check the array and wrap it as a Pillow image of mode L, RGB or RGBA."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}; use read_image() for files")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image has no pixels (shape {image.shape})")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif np.issubdtype(image.dtype, np.floating):
        if np.isnan(image).any():
            raise ValueError("float images must hold values in [0, 1], got NaN")
        low, high = float(image.min()), float(image.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"float images must hold values in [0, 1], got {low:g} to {high:g}; divide by 255 first, or pass uint8"
            )
        image = np.rint(image * 255.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"expected uint8 or float pixels, got {image.dtype}")
    picture = Image.fromarray(np.ascontiguousarray(image))  # mode L, RGB or RGBA
    if picture.mode == "RGBA" and image[:, :, 3].min() == 255:
        picture = picture.convert("RGB")  # opaque: the alpha band says nothing
    longer = max(picture.size)
    if longer > MAX_INPUT_SIDE:
        factor = -(-longer // MAX_INPUT_SIDE)
        if picture.mode == "RGBA":  # average premultiplied colours, or transparent pixels darken the edges
            picture = picture.convert("RGBa").reduce(factor).convert("RGBA")
        else:
            picture = picture.reduce(factor)
    return picture


def _ink(picture: Image.Image) -> Image.Image:
    """Ink as a greyscale image: distance from the background colour, strongest ink 255."""
    if picture.mode == "RGBA":  # with transparent pixels (_as_pillow made opaque images RGB)
        distance, noise = _distance_from_transparent(picture), 0.0
    else:
        distance, noise = _distance_from_border_colour(picture)
    strongest = distance.getextrema()[1]
    floor = max(NOISE_FLOOR * strongest, NOISE_MULTIPLE * noise)
    if strongest - floor < MIN_CONTRAST * 255:
        return Image.new("L", picture.size, 0)
    levels = np.arange(256)
    stretch = np.clip((levels - floor) * (255.0 / (strongest - floor)), 0, 255)
    return distance.point(np.rint(stretch).astype(np.uint8).tolist())


def _distance_from_border_colour(picture: Image.Image) -> tuple[Image.Image, float]:
    """Each pixel's distance from the background colour, and the background's noise.

    The background colour is the border's median colour; the distance is the
    largest difference over the colour bands; the noise is the median distance
    of the border's own pixels (paper texture, sensor noise). A digit that fills
    its frame (a scan cropped to the digit) can cover half the border, and the
    median then falls between ink and paper: the corners, which a digit hardly
    ever fills, give the background instead.
    """
    width, height = picture.size
    edges = [(0, 0, width, 1), (0, height - 1, width, height), (0, 0, 1, height), (width - 1, 0, width, height)]
    background, noise = _typical_colour(picture, edges)
    if noise > SPLIT_BORDER_DISTANCE:
        side = max(2, min(width, height) // 8)
        corners = [(0, 0, side, side), (width - side, 0, width, side),
                   (0, height - side, side, height), (width - side, height - side, width, height)]
        background, noise = _typical_colour(picture, corners)
    if picture.mode == "L":
        return ImageChops.difference(picture, Image.new("L", picture.size, int(background[0]))), noise
    fill = tuple(int(v) for v in background)
    distance = ImageChops.difference(picture, Image.new(picture.mode, picture.size, fill))
    return _largest_colour_band(distance), noise


def _typical_colour(picture: Image.Image, boxes: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, float]:
    """The median colour of the pixels in ``boxes``, and their median distance from it."""
    bands = len(picture.getbands())
    pixels = np.concatenate([np.asarray(picture.crop(box)).reshape(-1, bands) for box in boxes]).astype(np.int16)
    colour = np.median(pixels, axis=0).round().astype(np.int16)
    return colour, float(np.median(np.abs(pixels - colour).max(axis=1)))


def _distance_from_transparent(picture: Image.Image) -> Image.Image:
    """Ink of an RGBA image whose transparent pixels are the background.

    The image is composited onto black or white, whichever contrasts more with
    what is drawn; a pixel's distance from that backdrop is then its opacity
    times the distance of its own colour from the backdrop.
    """
    # Alpha-weighted mean colour of what is drawn, from a small copy for speed.
    small = np.asarray(picture.reduce(max(1, max(picture.size) // 64)), dtype=np.float32)
    weight = small[:, :, 3:] / 255.0
    drawn = (small[:, :, :3] * weight).sum(axis=(0, 1)) / max(float(weight.sum()), 1e-6)
    luminance = 0.299 * drawn[0] + 0.587 * drawn[1] + 0.114 * drawn[2]
    backdrop = (0, 0, 0, 255) if luminance > 127.5 else (255, 255, 255, 255)
    colour_distance = _largest_colour_band(ImageChops.difference(picture, Image.new("RGBA", picture.size, backdrop)))
    return ImageChops.multiply(colour_distance, picture.getchannel("A"))


def _largest_colour_band(difference: Image.Image) -> Image.Image:
    """The largest of the R, G and B bands, as a greyscale image."""
    r, g, b = difference.split()[:3]
    return ImageChops.lighter(ImageChops.lighter(r, g), b)


def _scale_longer_side(picture: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Resize so the longer side is ``size`` pixels, keeping the aspect ratio (at least 1 pixel)."""
    width, height = picture.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale > 1.0:
        resample = Image.Resampling.LANCZOS  # enlarging a small image: smooth, not blocky
    return picture.resize(new_size, resample)


def _normalise_stroke_width(digit: Image.Image, relative_width: float) -> Image.Image:
    """Thin strokes wider than MNIST's typical width (``relative_width`` of the digit's longer side now) to it.

    Thinner strokes are left as they are: thickening a thin pen line to MNIST's
    width closes the small loops and gaps of a 9, a 0 or a 3 (measured on CVL's
    scanned digits: 97.26% read right when thickened, 97.90% when not, with the
    default model; thin pens on the canvas read as well either way). The
    strokes are made a binary mask (:func:`stroke_mask`, which keeps every
    stroke whole), then redrawn from each pixel's distance to the mask's edge,
    moved inwards by half the change in width, so the change need not be a
    whole pixel; less where that would cut a narrow part of a stroke in two.
    """
    longer = max(digit.size)
    target = MNIST_RELATIVE_WIDTH

    def change(width: float) -> float:
        # Growing each side by d makes the relative width (width + 2d) / (longer + 2d).
        grow = (target * longer - width) / (2.0 * (1.0 - target))
        return max(grow, -width / 4.0)  # thin by at most half, so no stroke vanishes

    # Thick strokes are solid: their mask is the half-maximum one (stroke_mask), whose edge is where
    # the measured width puts it.
    grow = change(relative_width * longer)
    if grow > -0.5:  # not thicker than MNIST's by a pixel: leave it
        return digit
    mask = stroke_mask(np.asarray(digit, dtype=np.float32))
    inside = ndimage.distance_transform_edt(np.pad(mask, 1))
    pieces = _pieces(mask)
    # A stroke's edge lies half a pixel beyond the centres of its outermost ink pixels: ink stops
    # `-grow` pixels inside it. At grow 0 this is the mask itself, in as many pieces.
    redrawn = np.clip(inside + grow, 0.0, 1.0)
    while grow < 0 and max(_pieces(redrawn >= level) for level in (0.5, STROKE_LEVELS[-1])) > pieces:
        grow = grow / 2.0 if grow < -0.5 else 0.0
        redrawn = np.clip(inside + grow, 0.0, 1.0)
    image = Image.fromarray(_to_uint8(redrawn * 255.0))
    return image.crop(image.getbbox())


def stroke_mask(ink: np.ndarray) -> np.ndarray:
    """The strokes of a greyscale digit (ink high) as a boolean mask that keeps every stroke whole.

    Half the strongest ink is where a solid stroke's anti-aliased edge lies, so
    the mask is first ``ink >= 0.5 * max``. A thin or faint pen line (a scan, a
    photo, pencil) dips below that level along its length, and that threshold
    would cut it into pieces (an 8 read as a broken 5). So the level is lowered,
    step by step down to :data:`STROKE_LEVELS`' last, until no connected stroke
    of the ink (the pixels above that last level, ignoring specks) is in more
    than one piece of the mask. Faint marks on their own, and specks, are left out.
    """
    ink = np.asarray(ink, dtype=np.float32)
    strongest = float(ink.max())
    if strongest <= 0:
        return np.zeros(ink.shape, dtype=bool)
    strokes, n_strokes = ndimage.label(ink >= STROKE_LEVELS[-1] * strongest, structure=EIGHT_NEIGHBOURS)
    sizes = np.bincount(strokes.ravel(), minlength=n_strokes + 1)
    real = np.flatnonzero(sizes >= MIN_STROKE_PIXELS)
    real = real[real > 0]
    for level in STROKE_LEVELS:
        mask = ink >= level * strongest
        pieces, n_pieces = ndimage.label(mask, structure=EIGHT_NEIGHBOURS)
        # Each piece lies inside one stroke; the stroke of each piece, and the pieces per stroke:
        piece_stroke = ndimage.maximum(strokes, pieces, index=np.arange(1, n_pieces + 1)) if n_pieces else []
        per_stroke = np.bincount(np.asarray(piece_stroke, dtype=np.int64), minlength=n_strokes + 1)
        if (per_stroke[real] <= 1).all():  # a faint mark on its own may vanish
            break
    return mask & np.isin(strokes, real)  # specks (JPEG noise, dust) are not strokes to redraw


def _pieces(mask: np.ndarray) -> int:
    """The number of connected pieces of ``mask`` (8-connected) of at least MIN_STROKE_PIXELS pixels."""
    labels, n = ndimage.label(mask, structure=EIGHT_NEIGHBOURS)
    return int((np.bincount(labels.ravel())[1:] >= MIN_STROKE_PIXELS).sum()) if n else 0


def _blank(steps: dict[str, np.ndarray]) -> Preprocessed:
    empty = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.uint8)
    steps["centred 28x28"] = empty
    return Preprocessed(image=empty, blank=True, steps=steps)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _to_standard_mode(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to L, RGB or RGBA (8 bits a channel)."""
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(im, dtype=np.float64)
        high = values.max() if values.size and values.max() > 0 else 1.0
        return Image.fromarray(np.rint(values * (255.0 / high)).astype(np.uint8))
    if im.mode == "F":
        values = np.nan_to_num(np.asarray(im, dtype=np.float64))
        low, high = values.min(), values.max()
        span = high - low if high > low else 1.0
        return Image.fromarray(np.rint((values - low) * (255.0 / span)).astype(np.uint8))
    if has_alpha:
        return im.convert("RGBA")
    if im.mode in ("1", "L"):
        return im.convert("L")
    return im.convert("RGB")
