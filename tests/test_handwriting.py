"""Loaders of the real non-MNIST handwriting, and pen digits drawn like a user on the canvas."""

from __future__ import annotations

import gzip
import shutil
import zipfile

import numpy as np
import pytest

from mnist_core.data import DataError
from mnist_core.handwriting import (
    PENDIGITS_TRAINING_WRITERS,
    PenDigit,
    canvas_points,
    load_bhmsds,
    load_cvl,
    load_optdigits,
    load_pendigits,
    load_semeion,
    load_usps,
    random_canvas_drawing,
    render_pen_digit,
)


@pytest.fixture(scope="module")
def pen_digits(handwriting_dir):
    return load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")


def check_images(images: np.ndarray, labels: np.ndarray, count: int, size: int) -> None:
    assert images.shape == (count, size, size) and images.dtype == np.uint8
    assert labels.shape == (count,) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(10))
    # Ink high on a 0 background, like MNIST: mostly 0, and the corners are nearly always empty.
    assert (images == 0).mean() > 0.5
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 0).mean() > 0.8
    assert images.max() == 255 and (images.max(axis=(1, 2)) > 0).all()


# --- loaders -----------------------------------------------------------------------


def test_usps(handwriting_dir):
    images, labels = load_usps(handwriting_dir / "usps")
    check_images(images, labels, 2007, 16)
    # zip.info.txt: 359 zeros, 264 ones, ... 177 nines in the test set.
    assert np.bincount(labels).tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
    train_images, train_labels = load_usps(handwriting_dir / "usps", split="train")
    check_images(train_images, train_labels, 7291, 16)


def test_cvl_splits_are_7000_digits_by_different_writers(handwriting_dir):
    train, train_labels, train_writers = load_cvl(handwriting_dir / "cvl", "train")
    valid, valid_labels, valid_writers = load_cvl(handwriting_dir / "cvl", "valid")
    for images, labels, writers, n_writers in [(train, train_labels, train_writers, 67),
                                               (valid, valid_labels, valid_writers, 60)]:
        assert images.shape == (7000, 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels).tolist() == [700] * 10
        assert len(set(writers.tolist())) == n_writers
        # As scanned: dark ink on light paper.
        assert np.median(images) > 200 and (images.min(axis=(1, 2)) < 100).all()
    assert not set(train_writers.tolist()) & set(valid_writers.tolist())


def test_bhmsds_digits(handwriting_dir):
    images, labels = load_bhmsds(handwriting_dir / "bhmsds")
    assert images.shape == (15000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1500] * 10
    assert np.median(images) == 255 and (images.min(axis=(1, 2)) < 100).all()  # black ink on white


def test_cvl_split_must_be_train_or_valid(handwriting_dir):
    with pytest.raises(ValueError, match="train, valid"):
        load_cvl(handwriting_dir / "cvl", "test")


def test_a_damaged_zip_or_png_is_one_clear_error(handwriting_dir, tmp_path):
    real = handwriting_dir / "cvl" / "cvl-single-digits-train-valid.zip"
    folder = tmp_path / "cvl"
    folder.mkdir()
    with pytest.raises(DataError, match="no such file"):
        load_cvl(folder)
    # Truncated: the zip's directory (at its end) is gone.
    (folder / real.name).write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cvl-single-digits-train-valid\.zip: not a zip archive or damaged"):
        load_cvl(folder)
    # One member is not a PNG: the error names it, and nothing is returned.
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(folder / real.name, "w") as copy:
        members = [n for n in source.namelist() if n.startswith("database/valid/")][:40]
        for name in members:
            copy.writestr(name, source.read(name))
        copy.writestr("database/valid/3-0999-01-01.png", b"not a png at all")
    with pytest.raises(DataError, match=r"member database/valid/3-0999-01-01\.png is not a readable PNG"):
        load_cvl(folder)
    # A zip with none of the expected members.
    shutil.copy(handwriting_dir / "bhmsds" / "bhmsds.zip", folder / real.name)
    with pytest.raises(DataError, match="holds no file named like"):
        load_cvl(folder)


def test_pendigits_training_writers_are_half_of_them(pen_digits):
    writers = {d.writer for d in pen_digits}
    trained = writers & set(PENDIGITS_TRAINING_WRITERS)
    assert len(trained) == 15 and len(writers - trained) == 15


def test_usps_split_must_be_test_or_train(handwriting_dir):
    with pytest.raises(ValueError, match="'test' or 'train'"):
        load_usps(handwriting_dir / "usps", split="validation")


def test_semeion(handwriting_dir):
    images, labels = load_semeion(handwriting_dir / "semeion")
    check_images(images, labels, 1593, 16)
    assert set(np.unique(images)) == {0, 255}


@pytest.mark.parametrize("name, count", [("optdigits-orig.windep", 1797), ("optdigits-orig.tra", 1934)])
def test_optdigits(handwriting_dir, name, count):
    images, labels = load_optdigits(handwriting_dir / "optdigits" / name)
    check_images(images, labels, count, 32)
    assert set(np.unique(images)) == {0, 255}


def test_pendigits(pen_digits):
    assert len(pen_digits) == 7494
    assert all(isinstance(d, PenDigit) for d in pen_digits)
    assert {d.label for d in pen_digits} == set(range(10))
    assert {d.writer for d in pen_digits} <= set(range(1, 31)) and len({d.writer for d in pen_digits}) == 30
    strokes = [s for d in pen_digits for s in d.strokes]
    assert {len(d.strokes) for d in pen_digits} <= {1, 2, 3, 4}
    assert all(s.ndim == 2 and s.shape[1] == 2 and s.dtype == np.float64 and len(s) >= 1 for s in strokes)
    points = np.concatenate(strokes)
    assert points.min() >= 0 and points.max() <= 500


def test_pendigits_are_in_screen_coordinates(pen_digits):
    # A 7 starts at the top left with its bar: on screen, y grows downwards,
    # so the pen starts higher (smaller y) than it ends.
    sevens = [d for d in pen_digits if d.label == 7 and len(d.strokes) == 1]
    starts_above_end = [d.strokes[0][0, 1] < d.strokes[0][-1, 1] for d in sevens]
    assert np.mean(starts_above_end) > 0.9


# --- malformed files ------------------------------------------------------------------


def test_usps_malformed_line_names_file_and_line(tmp_path):
    good = "3 " + " ".join(["-1"] * 256)
    path = tmp_path / "zip.test.gz"
    path.write_bytes(gzip.compress(f"{good}\n{good}\n3 -1 -1\n".encode()))
    with pytest.raises(DataError, match=r"zip.test.gz, line 3: 3 values, expected a label and 256 pixels"):
        load_usps(tmp_path)
    path.write_bytes(gzip.compress(f"{good}\n12 {' '.join(['-1'] * 256)}\n".encode()))
    with pytest.raises(DataError, match=r"line 2: label 12 is not a digit 0-9"):
        load_usps(tmp_path)
    path.write_bytes(gzip.compress(f"{good}\n3 {' '.join(['x'] * 256)}\n".encode()))
    with pytest.raises(DataError, match=r"line 2: not all values are numbers"):
        load_usps(tmp_path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="semeion.data: no such file"):
        load_semeion(tmp_path)
    (tmp_path / "semeion.data").write_text("")
    with pytest.raises(DataError, match="semeion.data: empty file"):
        load_semeion(tmp_path)
    with pytest.raises(DataError, match="zip.test.gz: no such file"):
        load_usps(tmp_path)


def test_semeion_label_must_be_one_hot(tmp_path):
    pixels = ",".join(["0.0000"] * 256)
    (tmp_path / "semeion.data").write_text(f"{pixels},0,1,0,0,0,0,0,0,0,0\n{pixels},0,1,1,0,0,0,0,0,0,0\n")
    with pytest.raises(DataError, match=r"semeion.data, line 2: the last 10 columns must hold a single 1"):
        load_semeion(tmp_path)


def test_optdigits_malformed_bitmap_names_line(tmp_path):
    header = "entwidth = 4\nentheight = 2\nntot = 2\n"
    path = tmp_path / "opt.tra"
    path.write_text(header + "0110\n0110\n 1\n0110\n01x0\n 7\n")
    with pytest.raises(DataError, match=r"opt.tra, line 8: expected 4 characters '0' or '1'"):
        load_optdigits(path)
    path.write_text(header + "0110\n0110\n 1\n")
    with pytest.raises(DataError, match=r"opt.tra: 1 digits, but the header says ntot = 2"):
        load_optdigits(path)
    path.write_text(header + "0110\n0110\n 1\n0110\n0110\n 7\n")
    images, labels = load_optdigits(path)
    assert images.shape == (2, 2, 4) and labels.tolist() == [1, 7]


def test_pendigits_malformed_file_names_line(tmp_path):
    path = tmp_path / "pen.tra"
    digit = '.SEGMENT DIGIT 0 ? "3"\n.COMMENT 3 5 1\n.PEN_DOWN\n 10 20\n 30 40\n.PEN_UP\n.DT 100\n'
    path.write_text(digit + '.SEGMENT DIGIT 1 ? "4"\n.COMMENT 4 5 2\n.PEN_DOWN\n 10 twenty\n.PEN_UP\n')
    with pytest.raises(DataError, match=r"pen.tra, line 11: expected an 'x y' pair"):
        load_pendigits(path)
    path.write_text(digit + '.SEGMENT DIGIT 1-2 ? "4"\n.COMMENT 4 5 2\n.PEN_DOWN\n 10 20\n.PEN_UP\n')
    with pytest.raises(DataError, match=r"pen.tra, line 8: digit declares 2 strokes but has 1"):
        load_pendigits(path)
    path.write_text(digit + '.SEGMENT DIGIT 1 ? "4"\n.COMMENT 4 5 2\n.PEN_DOWN\n 10 20\n')
    with pytest.raises(DataError, match=r"pen.tra: ends inside a stroke"):
        load_pendigits(path)
    path.write_text(digit)
    (only,) = load_pendigits(path)
    assert only.label == 3 and only.writer == 5
    assert only.strokes[0].tolist() == [[10.0, 480.0], [30.0, 460.0]]


# --- drawing on the canvas ----------------------------------------------------------


def ink_bounds(canvas: np.ndarray, background=(0, 0, 0, 255)) -> tuple[int, int, int, int]:
    """Top, left, bottom, right (inclusive) of the pixels that differ from the background."""
    rows, cols = np.nonzero((canvas != np.array(background, np.uint8)).any(axis=2))
    return rows.min(), cols.min(), rows.max(), cols.max()


@pytest.mark.parametrize("canvas_size", [200, 280, 400])
def test_canvas_points_scale_and_centre_the_digit(pen_digits, canvas_size):
    for digit in pen_digits[::500]:
        points = np.concatenate(canvas_points(digit, canvas_size, 0.6))
        low, high = points.min(axis=0), points.max(axis=0)
        assert max(high - low) == pytest.approx(0.6 * canvas_size)
        assert (low + high) / 2 == pytest.approx((canvas_size / 2, canvas_size / 2))
        # The aspect ratio is kept.
        original = np.concatenate(digit.strokes)
        ratio = np.ptp(original[:, 0]) / np.ptp(original[:, 1])
        assert np.ptp(points[:, 0]) / np.ptp(points[:, 1]) == pytest.approx(ratio)


def test_canvas_points_keep_the_drawing_inside(pen_digits):
    digit = pen_digits[0]
    points = np.concatenate(canvas_points(digit, 280, 0.8, centre=(0, 300), stroke_width=20))
    assert points.min() >= 10 and points.max() <= 270
    assert points[:, 0].min() == pytest.approx(10) and points[:, 1].max() == pytest.approx(270)


@pytest.mark.parametrize("canvas_size", [200, 280, 400])
def test_render_pen_digit_draws_round_strokes_where_the_points_are(pen_digits, canvas_size):
    for digit in pen_digits[::750]:
        canvas = render_pen_digit(digit, canvas_size, stroke_width=16, height_fraction=0.6, centre=(90, 110))
        assert canvas.shape == (canvas_size, canvas_size, 4) and canvas.dtype == np.uint8
        assert set(np.unique(canvas[:, :, 3])) == {255}
        points = np.concatenate(canvas_points(digit, canvas_size, 0.6, (90, 110), 16))
        top, left, bottom, right = ink_bounds(canvas)
        # Round caps: the ink reaches half the stroke width beyond the extreme points.
        assert abs(top - (points[:, 1].min() - 8)) <= 1.5 and abs(bottom - (points[:, 1].max() + 8)) <= 1.5
        assert abs(left - (points[:, 0].min() - 8)) <= 1.5 and abs(right - (points[:, 0].max() + 8)) <= 1.5
        # Every point is inked, and the ink is the requested colour.
        xs, ys = np.rint(points).astype(int).T
        assert (canvas[ys, xs] == 255).all()


def test_render_pen_digit_colours_and_transparency(pen_digits):
    canvas = render_pen_digit(pen_digits[3], 280, ink=(10, 20, 30, 255), background=(0, 0, 0, 0))
    colours = {tuple(c) for c in canvas.reshape(-1, 4)}
    assert colours == {(10, 20, 30, 255), (0, 0, 0, 0)}


def test_random_canvas_drawing_follows_the_benchmark_protocol(pen_digits):
    rng = np.random.default_rng(0)
    heights, centres = [], []
    for digit in pen_digits[:300]:
        canvas = random_canvas_drawing(digit, rng)
        assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
        # White on opaque black.
        assert (canvas[:, :, 3] == 255).all() and set(np.unique(canvas[:, :, :3])) == {0, 255}
        assert (canvas[:, :, 0] == canvas[:, :, 1]).all() and (canvas[:, :, 0] == canvas[:, :, 2]).all()
        top, left, bottom, right = ink_bounds(canvas)
        assert top >= 0 and left >= 0 and bottom <= 279 and right <= 279
        size = max(bottom - top, right - left) + 1
        heights.append(size)  # the points' box plus one stroke width, 12-28 pixels
        centres.append(((top + bottom) / 2, (left + right) / 2))
    heights = np.array(heights)
    assert heights.min() >= 0.45 * 280 + 12 - 2 and heights.max() <= 0.85 * 280 + 28 + 2
    # Positions vary over the canvas, not only at its centre.
    assert np.ptp(np.array(centres), axis=0).min() > 60
    # The same seed draws the same digits.
    again = random_canvas_drawing(pen_digits[0], np.random.default_rng(0))
    assert np.array_equal(again, random_canvas_drawing(pen_digits[0], np.random.default_rng(0)))
