"""From a drawing or an image to a 28x28 MNIST-style digit, the way MNIST was made.

MNIST's digits were scanned, cropped, scaled so that the longer side of the
digit fills a 20x20 box (keeping the aspect ratio, anti-aliased into grey
levels) and pasted into a 28x28 field with the centre of mass at the centre.
:func:`to_mnist` does the same to anything a user gives the app:

1. **ink**: the background colour is estimated from the image's border (the
   median colour of its outermost pixels); each pixel's ink is its distance from
   that colour (the largest difference over the colour channels), stretched so
   the strongest ink is 1. Either polarity and any colours work. For RGBA, fully
   transparent pixels are background: the image is first composited onto black or
   white, whichever contrasts more with what is drawn.
2. **cropped**: the bounding box of the ink.
3. **stroke width**: strokes far thicker or thinner, relative to the digit's size,
   than MNIST's writers' are thinned or thickened into MNIST's range.
4. **fitted 20x20**: the longer side is scaled to 20 pixels, keeping the aspect ratio.
5. **centred 28x28**: pasted into 28x28 with the centre of mass at pixel (14, 14)
   (row, column), shifting by the rounded offset, as MNIST did.

Nothing drawn, or only a speck, gives ``blank=True`` and an all-zero image; see
:data:`MIN_CONTRAST` and :data:`MIN_DIGIT_FRACTION`.

:func:`read_image` reads a PNG, JPEG or other image file into an array that
:func:`to_mnist` accepts, refusing files that are not images or are too large.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError
from scipy import ndimage

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
NOISE_FLOOR = 0.05
NOISE_MULTIPLE = 8
# A drawing is blank when the longer side of its ink's bounding box is shorter
# than this fraction of the image's longer side: a speck (a tap of the pen, a
# stray dot), not a digit. On a 280-pixel canvas that is 28 pixels, a dot of a
# 28-pixel pen; people draw digits at half the canvas' height or more.
MIN_DIGIT_FRACTION = 0.10

# Stroke widths are measured and adjusted with the digit scaled to this size
# (its longer side, in pixels): three times MNIST's 20-pixel box.
WORK_SIZE = 60
# MNIST's stroke widths relative to the digit's longer side, 10th and 90th
# percentiles over the training set, measured with :func:`stroke_width` at
# WORK_SIZE (see benchmarks/bench_preprocessing.py). Drawings outside this range
# are thickened or thinned to its nearest end; those inside are left alone.
MNIST_RELATIVE_WIDTH = (0.086, 0.164)

# Larger inputs are first shrunk (box average) below this longer side, which keeps
# a photo's digit sharp enough while bounding the time taken.
MAX_INPUT_SIDE = 1024
# read_image refuses images with more pixels than this (50 megapixels), before
# decoding them: a decompression bomb must not exhaust memory.
MAX_IMAGE_PIXELS = 50_000_000


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
    if normalise_width:
        digit = _normalise_stroke_width(_scale_longer_side(digit, WORK_SIZE))
        steps["stroke width"] = np.asarray(digit)

    fitted = np.asarray(_scale_longer_side(digit, DIGIT_BOX), dtype=np.float32)
    if fitted.max() <= 0:
        return _blank(steps)
    fitted = fitted * (255.0 / fitted.max())
    steps["fitted 20x20"] = _to_uint8(fitted)

    centred = _centre_by_mass(fitted)
    steps["centred 28x28"] = centred
    return Preprocessed(image=centred, blank=False, steps=steps)


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file (PNG, JPEG, BMP, GIF, WebP, ...) into a uint8 array.

    Returns HxW for greyscale, HxWx3 for colour and HxWx4 when the image has
    transparency; EXIF rotation is applied. Raises :class:`ImageError` for a
    missing, empty or unreadable file, or one larger than ``max_pixels``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file, expected an image (PNG, JPEG, ...)")
    try:
        with Image.open(path) as im:  # reads only the header
            width, height = im.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{path}: image is {width}x{height} = {width * height:,} pixels, more than the "
                    f"{max_pixels:,} accepted; shrink or crop it first"
                )
            im = ImageOps.exif_transpose(im)
            return np.array(_to_standard_mode(im))
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file Pillow can read (use PNG, JPEG, BMP, GIF or WebP)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: image is too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError) as exc:
        raise ImageError(f"{path}: corrupt or truncated image ({exc})") from exc


def stroke_width(ink: np.ndarray) -> float:
    """Estimate the stroke width, in pixels, of a greyscale digit (ink high).

    Across a stroke w pixels wide, the distance from each ink pixel to the
    nearest background pixel runs 1, 2, ... w/2 ... 2, 1, averaging about
    w/4 + 1/2; so w is about 4 * mean distance - 2, whatever the strokes' shape
    and direction. Pixels count as ink from half the strongest ink up.
    """
    mask = ink >= 0.5 * ink.max()
    if not mask.any():
        return 0.0
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))
    return float(4.0 * distance[distance > 0].mean() - 2.0)


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
        low, high = float(np.nanmin(image)), float(np.nanmax(image))
        if np.isnan(image).any() or low < 0.0 or high > 1.0:
            raise ValueError(
                f"float images must hold values in [0, 1], got {low:g} to {high:g}; "
                "divide by 255 first, or pass uint8"
            )
        image = np.rint(image * 255.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"expected uint8 or float pixels, got {image.dtype}")
    picture = Image.fromarray(np.ascontiguousarray(image))  # mode L, RGB or RGBA
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
    if picture.mode == "RGBA":
        picture = _flatten(picture)
    width, height = picture.size
    edges = [(0, 0, width, 1), (0, height - 1, width, height), (0, 0, 1, height), (width - 1, 0, width, height)]
    border = np.concatenate([np.asarray(picture.crop(edge)).reshape(-1, len(picture.getbands())) for edge in edges])
    background = np.median(border, axis=0).round()
    # Paper texture, sensor noise: how far the border strays from the background colour.
    noise = float(np.median(np.abs(border - background).max(axis=1)))
    colour = tuple(int(v) for v in background)
    if picture.mode == "RGBA":
        colour = colour[:3] + (255,)  # opaque: the alpha band differs nowhere
    distance = ImageChops.difference(picture, Image.new(picture.mode, picture.size, colour[0] if len(colour) == 1 else colour))
    if distance.mode != "L":  # the ink is the largest difference over the colour bands
        r, g, b = distance.split()[:3]
        distance = ImageChops.lighter(ImageChops.lighter(r, g), b)
    strongest = distance.getextrema()[1]
    floor = max(NOISE_FLOOR * strongest, NOISE_MULTIPLE * noise)
    if strongest - floor < MIN_CONTRAST * 255:
        return Image.new("L", picture.size, 0)
    levels = np.arange(256)
    stretch = np.clip((levels - floor) * (255.0 / (strongest - floor)), 0, 255)
    return distance.point(np.rint(stretch).astype(np.uint8).tolist())


def _flatten(picture: Image.Image) -> Image.Image:
    """Composite RGBA onto black or white, whichever contrasts more with what is drawn.

    An opaque RGBA image is returned as it is (its alpha band is then ignored).
    """
    alpha = picture.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return picture
    # Alpha-weighted mean colour of what is drawn, from a small copy for speed.
    small = np.asarray(picture.reduce(max(1, max(picture.size) // 64)), dtype=np.float32)
    weight = small[:, :, 3:] / 255.0
    drawn = (small[:, :, :3] * weight).sum(axis=(0, 1)) / max(float(weight.sum()), 1e-6)
    luminance = 0.299 * drawn[0] + 0.587 * drawn[1] + 0.114 * drawn[2]
    backdrop = (0, 0, 0) if luminance > 127.5 else (255, 255, 255)
    flat = Image.new("RGB", picture.size, backdrop)
    flat.paste(picture, mask=alpha)
    return flat


def _scale_longer_side(picture: Image.Image, size: int) -> Image.Image:
    """Resize so the longer side is ``size`` pixels, keeping the aspect ratio (at least 1 pixel)."""
    width, height = picture.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return picture.resize(new_size, Image.Resampling.LANCZOS)


def _normalise_stroke_width(digit: Image.Image) -> Image.Image:
    """Thicken or thin the strokes into MNIST's range of width relative to the digit's size.

    The ink is re-drawn from its signed distance to the stroke edges, offset by
    half the change in width, so the change need not be a whole pixel.
    """
    pixels = np.asarray(digit, dtype=np.float32)
    width = stroke_width(pixels)
    longer = max(digit.size)
    low, high = MNIST_RELATIVE_WIDTH
    target = min(max(width / longer, low), high)
    # Growing each side by d makes the relative width (width + 2d) / (longer + 2d).
    grow = (target * longer - width) / (2.0 * (1.0 - target))
    grow = max(grow, -width / 4.0)  # thin by at most half, so no stroke vanishes
    if abs(grow) < 0.5:
        return digit
    margin = int(np.ceil(max(grow, 0.0))) + 1
    mask = np.pad(pixels >= 0.5 * pixels.max(), margin)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    signed = np.where(mask, inside - 0.5, 0.5 - outside)  # edges at 0, positive in the ink
    redrawn = np.clip(signed + grow + 0.5, 0.0, 1.0)
    out = Image.fromarray(_to_uint8(redrawn * 255.0))
    return out.crop(out.getbbox())


def _centre_by_mass(fitted: np.ndarray) -> np.ndarray:
    """Paste into 28x28, shifting by whole pixels so the centre of mass is nearest (14, 14)."""
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
