"""Preprocessing on real handwriting: pen strokes drawn onto canvases, image files, and MNIST itself."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_core import preprocessing
from mnist_core.handwriting import (
    load_cvl,
    load_optdigits,
    load_pendigits,
    load_semeion,
    load_usps,
    render_pen_digit,
)
from mnist_core.preprocessing import (
    MAX_IMAGE_PIXELS,
    THICK_STROKES,
    WORK_SIZE,
    ImageError,
    Preprocessed,
    even_out_lighting,
    png_size,
    read_image,
    read_image_bytes,
    read_png,
    stroke_width,
    to_mnist,
)

CANVAS_SIZES = (200, 280, 400)


@pytest.fixture(scope="module")
def pen_digits(handwriting_dir):
    """Every tenth of the 7,494 real pen digits: all writers and labels."""
    return load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")[::10]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    weights = image.astype(np.float64)
    rows, cols = np.indices(image.shape)
    return (weights * rows).sum() / weights.sum(), (weights * cols).sum() / weights.sum()


def ink_box(image: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero pixels."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def mean_difference(a: np.ndarray, b: np.ndarray, shift: int = 0) -> float:
    """Mean absolute pixel difference (0-255), allowing ``b`` to move by up to ``shift`` pixels.

    MNIST's centring shifts by whole pixels, so a tiny change in a drawing can
    move the whole digit by one pixel. For scale: moving an MNIST digit by one
    pixel costs 16.6 on average, and two digits of the same class differ by 32.
    """
    a = a.astype(np.float64)
    padded = np.pad(b.astype(np.float64), shift)
    n = a.shape[0]
    return min(
        np.abs(a - padded[shift + dy : shift + dy + n, shift + dx : shift + dx + n]).mean()
        for dy in range(-shift, shift + 1)
        for dx in range(-shift, shift + 1)
    )


def assert_mnist_like(result: Preprocessed) -> None:
    assert not result.blank
    assert result.image.shape == (28, 28) and result.image.dtype == np.uint8
    assert result.image.max() == 255
    row, col = centre_of_mass(result.image)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1, f"centre of mass at ({row:.2f}, {col:.2f})"
    assert max(ink_box(result.image)) in (19, 20)


# --- drawings on canvases ------------------------------------------------------


@pytest.mark.parametrize("canvas_size", CANVAS_SIZES)
def test_drawn_digits_are_centred_by_mass_and_fill_the_20_pixel_box(pen_digits, canvas_size):
    rng = np.random.default_rng(canvas_size)
    for digit in pen_digits[:60]:
        width = int(rng.integers(6, 40)) * canvas_size // 280
        fraction = rng.uniform(0.3, 0.95)
        centre = tuple(rng.uniform(0, canvas_size, 2))
        canvas = render_pen_digit(digit, canvas_size, width, fraction, centre)
        result = to_mnist(canvas)
        assert_mnist_like(result)
        assert list(result.steps) == ["ink", "cropped", "stroke width", "fitted 20x20", "centred 28x28"]
        for step in result.steps.values():
            assert step.ndim == 2 and step.dtype == np.uint8
        assert max(result.steps["fitted 20x20"].shape) == 20


@pytest.mark.parametrize("canvas_size", CANVAS_SIZES)
def test_colours_polarity_and_transparency_do_not_change_the_digit(pen_digits, canvas_size):
    for digit in pen_digits[:40]:
        white_on_black = render_pen_digit(digit, canvas_size)
        reference = to_mnist(white_on_black).image
        colours = {
            "black on white": ((0, 0, 0, 255), (255, 255, 255, 255)),
            "white on transparent": ((255, 255, 255, 255), (0, 0, 0, 0)),
            "black on transparent": ((0, 0, 0, 255), (0, 0, 0, 0)),
            "red on transparent": ((255, 0, 0, 255), (0, 0, 0, 0)),
            "blue on yellow": ((30, 60, 200, 255), (250, 240, 120, 255)),
            "grey on dark grey": ((140, 140, 140, 255), (40, 40, 40, 255)),
        }
        variants = {
            name: render_pen_digit(digit, canvas_size, ink=ink, background=background)
            for name, (ink, background) in colours.items()
        }
        variants["greyscale"] = white_on_black[:, :, 0]
        variants["RGB float"] = white_on_black[:, :, :3] / 255.0
        variants["greyscale float inverted"] = 1.0 - white_on_black[:, :, 0] / 255.0
        for name, image in variants.items():
            result = to_mnist(image)
            assert not result.blank, name
            assert mean_difference(result.image, reference) < 1.0, name


def test_antialiased_transparent_strokes_give_the_same_digit_as_opaque_ones(pen_digits):
    # Browsers anti-alias: edge pixels of a stroke on a transparent canvas are
    # partly transparent. Drawing at 4x and averaging down (premultiplied) makes them.
    for digit in pen_digits[:20]:
        big = Image.fromarray(render_pen_digit(digit, 1120, 72, background=(0, 0, 0, 0)))
        transparent = np.array(big.convert("RGBa").reduce(4).convert("RGBA"))
        opaque = np.array(Image.fromarray(render_pen_digit(digit, 1120, 72)).reduce(4))
        assert transparent[0, 0, 3] == 0 and 0 < transparent[:, :, 3].mean() < 255
        assert mean_difference(to_mnist(transparent).image, to_mnist(opaque).image, shift=1) < 2.0


def test_a_drawing_touching_the_border_gives_the_same_digit(pen_digits):
    for digit in pen_digits[:40]:
        canvas = render_pen_digit(digit, 280)
        rows, cols = np.nonzero(canvas[:, :, 0])
        touching = canvas[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        result = to_mnist(touching)
        assert_mnist_like(result)
        assert mean_difference(result.image, to_mnist(canvas).image, shift=1) < 3.0


def relative_width(image: np.ndarray) -> float:
    return stroke_width(image) / max(image.shape)


def test_thick_strokes_are_thinned_to_mnist_width_and_thin_ones_left(pen_digits):
    # MNIST's median stroke width is 0.105 of the digit's longer side (10th-90th percentiles 0.079-0.147).
    for digit in pen_digits[:30]:
        thick = to_mnist(render_pen_digit(digit, 280, stroke_width=30, height_fraction=0.5))
        before, after = relative_width(thick.steps["cropped"]), relative_width(thick.steps["stroke width"])
        assert before > 0.15 and after < 0.85 * before
        # 4-pixel strokes on a 400-pixel canvas are far thinner than MNIST's: left as drawn (thickening them
        # closes small loops; see preprocessing._normalise_stroke_width).
        thin_canvas = render_pen_digit(digit, 400, stroke_width=4)
        thin = to_mnist(thin_canvas)
        assert relative_width(thin.steps["cropped"]) < 0.06
        assert np.array_equal(thin.steps["stroke width"], np.asarray(working_size(thin.steps["cropped"])))


def stroke_pieces(image: np.ndarray) -> int:
    """Connected pieces (8-connected) of the ink at 15% of its strongest, of at least 4 pixels."""
    labels, _ = ndimage.label(image >= 0.15 * image.max(), structure=np.ones((3, 3)))
    return int((np.bincount(labels.ravel())[1:] >= 4).sum())


@pytest.mark.parametrize("scale", [1, 4])
def test_the_stroke_width_step_never_cuts_a_stroke_of_thin_pen_on_paper(handwriting_dir, scale):
    """Real CVL scans (thin, grey, anti-aliased pen lines), as given at 28x28 and enlarged 4 times.

    The step's input is the cropped digit at its working size; its output never has more pieces of
    stroke. The threshold it had until 2026-11 (half the strongest ink) cut 38% of these in pieces.
    """
    images, _, _ = load_cvl(handwriting_dir / "cvl", "valid")
    changed = 0
    for image in images[::7]:
        if scale > 1:
            image = np.asarray(Image.fromarray(image).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC))
        result = to_mnist(image)
        work = np.asarray(working_size(result.steps["cropped"]), np.float64)
        after = result.steps["stroke width"].astype(np.float64)
        changed += after.shape != work.shape or not np.array_equal(after, work)
        assert stroke_pieces(after) <= stroke_pieces(work)
    assert changed > 20  # the step did thin some of them (3-4%)


def working_size(cropped: np.ndarray) -> Image.Image:
    """The cropped digit as the stroke-width step receives it: its longer side scaled to WORK_SIZE."""
    return preprocessing._scale_longer_side(Image.fromarray(cropped), WORK_SIZE, Image.Resampling.BOX)


def test_small_real_images_from_other_datasets(handwriting_dir):
    usps, _ = load_usps(handwriting_dir / "usps")
    semeion, _ = load_semeion(handwriting_dir / "semeion")
    optdigits, _ = load_optdigits(handwriting_dir / "optdigits" / "optdigits-orig.windep")
    for images in (usps[:100], semeion[:100], optdigits[:100]):
        for image in images:
            assert_mnist_like(to_mnist(image))


def _photo_of_paper(scan: np.ndarray, gradient: int, columns_first: bool = True) -> bytes:
    """A JPEG of a scan's ink on paper whose light falls off by ``gradient`` grey levels across it."""
    size = (400, 460)
    ramp = np.linspace(230, 230 - gradient, size[0] if columns_first else size[1])
    paper = np.tile(ramp, (size[1], 1)) if columns_first else np.tile(ramp[:, None], (1, size[0]))
    ink = Image.fromarray(scan).convert("L").resize(size).point(lambda v: 255 - v)
    picture = Image.composite(Image.new("L", size, 40), Image.fromarray(np.rint(paper).astype(np.uint8)), ink)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def test_a_photo_in_uneven_light_gives_the_digit_it_gives_in_even_light(handwriting_dir):
    """Light falling off by 96 grey levels across the paper: its far side is as dark as ink. Evened out, each
    real CVL digit's 28x28 image is the one its evenly lit photo gives (within a pixel's shift, less than two
    digits of the same class differ: see mean_difference); decoded alone, it is not (mostly blank)."""
    images, _, _ = load_cvl(handwriting_dir / "cvl", "valid")
    evened, decoded = [], []
    for scan in images[::350]:
        even = to_mnist(read_image_bytes(_photo_of_paper(scan, 0))).image
        for columns_first in (True, False):
            jpeg = _photo_of_paper(scan, 96, columns_first)
            for results, image in ((evened, read_image_bytes(jpeg)), (decoded, Image.open(io.BytesIO(jpeg)))):
                digit = to_mnist(np.array(image))
                results.append(np.inf if digit.blank else mean_difference(even, digit.image, shift=1))
    assert max(evened) < 16, evened
    assert np.median(decoded) >= 16, decoded  # lost (blank) or another shape


def test_evenly_lit_images_and_drawings_are_left_as_they_are(pen_digits, handwriting_dir):
    images, _, _ = load_cvl(handwriting_dir / "cvl", "valid")
    drawing = render_pen_digit(pen_digits[0], 280, 18)  # RGBA: a canvas
    opaque = drawing[:, :, :3].copy()
    scan = np.array(Image.open(io.BytesIO(_photo_of_paper(images[0], 0))))
    for image in (drawing, opaque, scan, images[0]):
        assert even_out_lighting(image) is image


def test_light_ink_on_dark_uneven_paper_is_evened_out_too(handwriting_dir):
    """A blackboard: light ink on a board lit unevenly."""
    images, _, _ = load_cvl(handwriting_dir / "cvl", "valid")
    for scan in images[1::700]:
        dark = 255 - np.array(Image.open(io.BytesIO(_photo_of_paper(scan, 0))))
        uneven = 255 - np.array(Image.open(io.BytesIO(_photo_of_paper(scan, 96))))
        evened = to_mnist(even_out_lighting(uneven))
        assert not evened.blank and mean_difference(to_mnist(dark).image, evened.image, shift=1) < 16
        assert to_mnist(uneven).blank  # decoded alone, the lit side of the board is taken for the ink


def test_digits_filling_their_frame_are_not_taken_for_blank(handwriting_dir):
    """Scans cropped to the digit: ink covers half the border, so the border's median is no background."""
    semeion, _ = load_semeion(handwriting_dir / "semeion")
    usps, _ = load_usps(handwriting_dir / "usps")
    filling = [x for x in [*semeion, *usps] if (np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]]) > 127).mean() >= 0.35]
    assert len(filling) >= 9  # the real cases: eight Semeion digits and a USPS one
    for image in filling:
        result = to_mnist(image)
        assert_mnist_like(result)
        inverted = to_mnist(255 - image)  # the same digit, dark on light
        assert np.abs(inverted.image.astype(int) - result.image).max() <= 1


# --- blank, specks and awkward drawings ---------------------------------------------


def blank_canvas(size: int = 280, colour=(0, 0, 0, 255)) -> np.ndarray:
    return np.array(Image.new("RGBA", (size, size), colour))


@pytest.mark.parametrize("colour", [(0, 0, 0, 255), (255, 255, 255, 255), (0, 0, 0, 0), (30, 200, 90, 255)])
def test_an_empty_canvas_is_blank(colour):
    result = to_mnist(blank_canvas(280, colour))
    assert result.blank
    assert result.image.shape == (28, 28) and result.image.dtype == np.uint8 and result.image.max() == 0
    assert list(result.steps) == ["ink", "centred 28x28"]


@pytest.mark.parametrize("diameter", [1, 5, 18, 24])
def test_a_speck_is_blank(diameter):
    canvas = Image.fromarray(blank_canvas())
    ImageDraw.Draw(canvas).ellipse((130, 60, 130 + diameter - 1, 60 + diameter - 1), fill=(255, 255, 255, 255))
    assert to_mnist(np.array(canvas)).blank


def test_noise_alone_is_blank_and_does_not_hide_a_digit(pen_digits):
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 8, (280, 280))
    assert to_mnist(np.clip(200 + noise, 0, 255).astype(np.uint8)).blank
    drawing = render_pen_digit(pen_digits[0], ink=(30, 30, 30, 255), background=(220, 220, 220, 255))[:, :, 0]
    noisy = np.clip(drawing + noise, 0, 255).astype(np.uint8)
    assert mean_difference(to_mnist(noisy).image, to_mnist(drawing).image, shift=1) < 5.0


@pytest.mark.parametrize("colour", [(255, 255, 255, 255), (0, 0, 0, 255), (200, 30, 30, 255)])
def test_a_canvas_filled_with_ink_does_not_raise(colour):
    result = to_mnist(blank_canvas(280, colour))
    assert result.blank  # a uniform image holds no digit, whatever its colour


@pytest.mark.parametrize("thickness", [1, 2, 15])
@pytest.mark.parametrize("vertical", [False, True])
def test_a_straight_line_does_not_raise(thickness, vertical):
    canvas = blank_canvas()
    if vertical:
        canvas[30:250, 140 : 140 + thickness] = 255
    else:
        canvas[140 : 140 + thickness, 30:250] = 255
    result = to_mnist(canvas)
    assert not result.blank
    height, width = ink_box(result.image)
    assert max(height, width) == 20 and min(height, width) <= 4
    row, col = centre_of_mass(result.image)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1


def test_tiny_images_do_not_raise():
    assert to_mnist(np.zeros((1, 1), np.uint8)).blank
    line = np.zeros((1, 40), np.uint8)
    line[0, 5:35] = 255
    assert max(ink_box(to_mnist(line).image)) == 20


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((10, 10, 2), np.uint8), "HxW"),
        (np.zeros((0, 10), np.uint8), "no pixels"),
        (np.full((10, 10), 2.0), "[0, 1]"),
        (np.full((10, 10), np.nan), "[0, 1]"),
        (np.zeros((10, 10), np.int64), "uint8 or float"),
    ],
)
def test_invalid_arrays_are_refused_with_a_clear_message(image, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        to_mnist(image)


def test_a_file_name_is_not_an_image():
    with pytest.raises(TypeError, match="read_image"):
        to_mnist("digit.png")


# --- image files -------------------------------------------------------------------------


@pytest.mark.parametrize("canvas_size", CANVAS_SIZES)
def test_png_and_jpeg_files_give_the_same_digit_as_the_canvas(pen_digits, canvas_size, tmp_path):
    for i, digit in enumerate(pen_digits[:15]):
        canvas = render_pen_digit(digit, canvas_size, ink=(20, 20, 60, 255), background=(245, 245, 235, 255))
        reference = to_mnist(canvas).image
        Image.fromarray(canvas).save(tmp_path / f"{i}.png")
        Image.fromarray(canvas).convert("RGB").save(tmp_path / f"{i}.jpg", quality=85)
        Image.fromarray(canvas).convert("L").save(tmp_path / f"{i}-grey.png")
        png, jpeg, grey = (read_image(tmp_path / name) for name in (f"{i}.png", f"{i}.jpg", f"{i}-grey.png"))
        assert png.shape == (canvas_size, canvas_size, 4) and np.array_equal(png, canvas)
        assert jpeg.shape == (canvas_size, canvas_size, 3) and jpeg.dtype == np.uint8
        assert grey.shape == (canvas_size, canvas_size)
        assert np.array_equal(to_mnist(png).image, reference)
        assert mean_difference(to_mnist(jpeg).image, reference, shift=1) < 5.0
        assert mean_difference(to_mnist(grey).image, reference, shift=1) < 1.0


def test_read_image_gives_transparency_of_paletted_pngs(tmp_path):
    image = Image.new("P", (30, 20), 0)
    image.putpalette([0, 0, 0, 255, 255, 255])
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    array = read_image(tmp_path / "p.png")
    assert array.shape == (20, 30, 4) and array[0, 0, 3] == 0


def test_read_image_refuses_a_text_file(tmp_path):
    path = tmp_path / "digit.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError, match="digit.png: not an image"):
        read_image(path)


def test_read_image_refuses_an_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.jpg: empty file"):
        read_image(path)


def test_read_image_refuses_a_missing_file(tmp_path):
    with pytest.raises(ImageError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png")


def test_read_image_refuses_a_truncated_file(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (255, 0, 0)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ImageError, match="cut.png"):
        read_image(path)


def png_bytes(width: int, height: int) -> bytes:
    """A real 1-bit greyscale PNG, all black: 7 KB on disk however many pixels it has."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    pixels = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_read_image_refuses_an_oversized_image_before_decoding_it(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(10_000, 6_000))  # 60 megapixels
    assert path.stat().st_size < 100_000
    expected = f"huge.png: image is 10000x6000 = 60,000,000 pixels, more than the {MAX_IMAGE_PIXELS:,} accepted"
    with pytest.raises(ImageError, match=expected):
        read_image(path)


def test_read_image_pixel_limit_is_a_parameter(tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(png_bytes(300, 200))
    assert read_image(path).shape == (200, 300)
    with pytest.raises(ImageError, match="more than the 50,000 accepted"):
        read_image(path, max_pixels=50_000)


def ztxt_bomb_png() -> bytes:
    """A 10x10 PNG with a compressed text chunk (zTXt) that inflates to 50 MB: 51 KB on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    buffer = io.BytesIO()
    Image.new("L", (10, 10)).save(buffer, "PNG")
    plain = buffer.getvalue()
    bomb = chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"\0" * (50 << 20), 9))
    return plain[:33] + bomb + plain[33:]  # after the signature and IHDR (8 + 25 bytes)


def test_read_image_names_the_file_of_a_text_chunk_bomb(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(ztxt_bomb_png())
    with pytest.raises(ImageError, match=r"bomb\.png: refused by Pillow's limits on image files \(Decompressed data"):
        read_image(path)
    with pytest.raises(ImageError, match=r"^canvas: refused by Pillow's limits"):
        read_png(path.read_bytes(), max_width=100, max_height=100, name="canvas")


def test_read_image_says_a_directory_or_fifo_is_not_an_image_file(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageError, match=r"folder\.png: is a directory, expected an image file"):
        read_image(tmp_path / "folder.png")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match=r"pipe\.png: is not a regular file \(a FIFO, socket or device\)"):
        read_image(tmp_path / "pipe.png")  # and returns at once: a FIFO is never opened


def test_read_png_gives_what_the_canvas_component_decoded(pen_digits):
    """The page decodes the canvas' PNG itself now: the same RGBA array as streamlit-drawable-canvas' image_data."""
    buffer = io.BytesIO()
    Image.fromarray(render_pen_digit(pen_digits[0], canvas_size=300)).save(buffer, "PNG")
    data = buffer.getvalue()
    assert png_size(data) == (300, 300)
    decoded = read_png(data, max_width=1200, max_height=1200, name="canvas")
    assert decoded.shape == (300, 300, 4) and np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(data))))


@pytest.mark.parametrize("width, height", [(1201, 300), (300, 1201), (5000, 5000)])
def test_read_png_refuses_an_image_larger_than_its_bound_from_the_header(width, height):
    data = png_bytes(width, height)
    assert png_size(data) == (width, height)
    with pytest.raises(ImageError, match=rf"^canvas: PNG of {width}x{height} pixels, larger than the 1200x1200 "
                                         "accepted; not decoded$"):
        read_png(data, max_width=1200, max_height=1200, name="canvas")


@pytest.mark.parametrize("data", [b"", b"GIF89a" + b"\0" * 30, b"\x89PNG\r\n\x1a\n" + b"\0" * 4 + b"IEND" + b"\0" * 8])
def test_read_png_refuses_bytes_that_are_not_a_png(data):
    with pytest.raises(ImageError, match=r"^canvas: not a PNG image"):
        read_png(data, max_width=1200, max_height=1200, name="canvas")


# --- MNIST ---------------------------------------------------------------------------


@pytest.mark.slow
def test_upscaled_mnist_digits_come_back_as_they_were(mnist):
    """MNIST test digits blown up to 280x280 and preprocessed again match the originals.

    The round trip is not exact: upscaling blurs the edges, so the ink's bounding
    box is a fraction of a pixel larger than MNIST's, and whole-pixel centring can
    then land one pixel away. Measured, without the stroke-width step (MNIST's own
    pipeline): a mean absolute difference of 7.9 grey levels (on 0-255), where
    moving an MNIST digit by one pixel costs 16.6 and two different digits of the
    same class differ by about 32. The stroke-width step then moves every digit's
    width to MNIST's median, which changes thick and thin MNIST digits: 10.3.
    """
    originals = mnist.x_test[:2000]
    upscaled = [np.array(Image.fromarray(x).resize((280, 280), Image.Resampling.BILINEAR)) for x in originals]
    one_pixel_shift = np.abs(np.roll(originals, 1, axis=2).astype(np.float64) - originals).mean()
    for normalise_width, bound in ((False, 9.0), (True, 12.0)):
        restored = np.stack([to_mnist(x, normalise_width=normalise_width).image for x in upscaled])
        differences = np.abs(restored.astype(np.float64) - originals).mean(axis=(1, 2))
        assert differences.mean() < bound
        assert differences.mean() < 0.75 * one_pixel_shift
        assert np.median(differences) < bound
        # The centre of mass of the restored digits sits where MNIST's does.
        centres = np.array([centre_of_mass(x) for x in restored])
        assert np.abs(centres - 14.0).max() <= 1.0
        assert np.abs(centres.mean(axis=0) - 14.0).max() < 0.1


def test_preprocessing_and_data_load_without_tensorflow():
    """``from mnist_core import to_mnist, load_mnist`` does not import TensorFlow (~3 s)."""
    code = "import sys; from mnist_core import to_mnist, load_mnist; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_thick_pen_on_a_small_digit_is_flagged_and_ordinary_writing_is_not(pen_digits, mnist):
    """Above THICK_STROKES the default model reads pen digits far worse (bench_stroke_thickness.py)."""
    chosen = pen_digits[::40][:40]
    blobs = [to_mnist(render_pen_digit(d, 300, stroke_width=40, height_fraction=0.2)) for d in chosen]
    assert all(p.thick_strokes and p.relative_stroke_width > THICK_STROKES for p in blobs)
    drawn = [to_mnist(render_pen_digit(d, 300, stroke_width=18, height_fraction=0.65)) for d in chosen]
    assert not any(p.thick_strokes for p in drawn)
    assert 0.05 < np.median([p.relative_stroke_width for p in drawn]) < 0.2
    # MNIST's own writers: not one of 1,000 test digits is flagged.
    assert not any(to_mnist(x).thick_strokes for x in mnist.x_test[:1000])
    # Not measured, so never flagged: without the stroke-width step, and for a blank canvas.
    assert to_mnist(render_pen_digit(chosen[0], 300, 40, 0.2), normalise_width=False).relative_stroke_width is None
    assert not to_mnist(np.zeros((100, 100), np.uint8)).thick_strokes


def test_an_uploaded_picture_is_read_as_a_file_is_or_refused_naming_it(tmp_path):
    from PIL import Image

    from mnist_core.preprocessing import read_image_bytes

    path = tmp_path / "digit.jpg"
    Image.fromarray(np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1))).convert("RGB").save(path, quality=90)
    np.testing.assert_array_equal(read_image_bytes(path.read_bytes(), "digit.jpg"), read_image(path))
    with pytest.raises(ImageError, match="^empty.png: empty file"):
        read_image_bytes(b"", "empty.png")
    with pytest.raises(ImageError, match="^notes.png: not an image file Pillow can read"):
        read_image_bytes(b"just some text", "notes.png")
    with pytest.raises(ImageError, match="^huge.png: image is far larger than the 50,000,000 pixels accepted"):
        read_image_bytes(png_bytes(20000, 20000), "huge.png")
