"""Numbers and non-digits on real pen strokes: the shipped model and digit-or-not network, as the page uses them."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_core.handwriting import load_bhmsds_symbols, load_pendigits, render_pen_digit, render_pen_number
from mnist_core.predictor import Predictor
from mnist_core.scribbles import KINDS, render_scribble


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load()  # the shipped default and models/not-a-digit/


@pytest.fixture(scope="module")
def writers(handwriting_dir):
    """pendigits' held-out writers (16-30): writer -> label -> their digits of that label."""
    found = {}
    for d in load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra"):
        if d.writer > 15:
            found.setdefault(d.writer, {}).setdefault(d.label, []).append(d)
    return found


def number_of(writers, writer, text, index=0):
    return [writers[writer][int(c)][index] for c in text]


def right_share(predictor, writers, texts, **drawing) -> float:
    """The share of ``texts`` (a number each, drawn by writers 16-30 in turn) read exactly."""
    right = 0
    for i, text in enumerate(texts):
        writer = 16 + i % 15
        reading = predictor.predict_number(render_pen_number(number_of(writers, writer, text), **drawing))
        right += reading.number == text
    return right / len(texts)


@pytest.mark.parametrize("length", [2, 3, 4])
def test_numbers_of_every_length_are_read_left_to_right(predictor, writers, length):
    rng = np.random.default_rng(length)
    texts = ["".join(str(d) for d in rng.integers(0, 10, length)) for _ in range(30)]
    assert right_share(predictor, writers, texts, gaps=0.25) >= 0.9


def test_a_number_gives_each_digit_its_place_and_probabilities(predictor, writers):
    reading = predictor.predict_number(render_pen_number(number_of(writers, 17, "2024"), gaps=0.3))
    assert reading.number == "2024" and reading.digit is None and not reading.not_a_digit
    assert [d.digit for d in reading.digits] == [2, 0, 2, 4]
    lefts = [box[0] for box in reading.boxes]
    assert lefts == sorted(lefts) and all(box[2] > box[0] and box[3] > box[1] for box in reading.boxes)
    for d in reading.digits:
        assert d.probabilities.shape == (10,) and d.probabilities.sum() == pytest.approx(1, abs=1e-5)
    as_dict = reading.as_dict()
    assert as_dict["number"] == "2024" and as_dict["digit"] is None and as_dict["probabilities"] is None
    assert [d["digit"] for d in as_dict["digits"]] == [2, 0, 2, 4] and len(as_dict["digits"][0]["box"]) == 4


def test_touching_digits_are_split_where_they_touch(predictor, writers):
    texts = ["10", "23", "45", "67", "89", "31", "52", "74", "96", "08", "13", "57", "60", "28", "94"]
    assert right_share(predictor, writers, texts, gaps=-0.04) >= 0.8


def two_stroke_digits(writers, label):
    return [d for by_label in writers.values() for d in by_label.get(label, []) if len(d.strokes) >= 2]


@pytest.mark.parametrize("label", [4, 5, 7])
def test_a_digit_drawn_in_two_strokes_is_kept_whole(predictor, writers, label):
    digits = two_stroke_digits(writers, label)[:20]
    assert len(digits) >= 5, f"only {len(digits)} two-stroke {label}s"
    readings = [predictor.predict_number(render_pen_digit(d)) for d in digits]
    assert all(len(r.digits) == 1 for r in readings)
    assert sum(r.number == str(label) for r in readings) >= 0.9 * len(readings)


def test_a_crossed_seven_drawn_with_a_separate_bar_is_one_seven(predictor, writers):
    seven = writers[20][7][0]
    canvas = Image.fromarray(render_pen_digit(seven))
    points = np.concatenate(seven.strokes)
    ImageDraw.Draw(canvas).line([(95, 150), (185, 150)], fill=(255, 255, 255, 255), width=18)
    reading = predictor.predict_number(np.array(canvas))
    assert len(points) and len(reading.digits) == 1 and reading.number == "7"


def test_a_stray_dot_beside_a_digit_is_ignored(predictor, writers):
    for label in (3, 6, 8):
        canvas = render_pen_digit(writers[18][label][0], height_fraction=0.6, centre=(120, 140))
        canvas[30:46, 240:256] = 255  # a tap of the pen far off to the right
        reading = predictor.predict_number(canvas)
        assert reading.number == str(label), (label, reading.guess)


def test_a_single_digit_reads_exactly_as_predict(predictor, writers):
    for label in range(10):
        canvas = render_pen_digit(writers[25][label][0])
        alone, reading = predictor.predict(canvas), predictor.predict_number(canvas)
        np.testing.assert_array_equal(reading.digits[0].probabilities, alone.probabilities)
        np.testing.assert_array_equal(reading.digits[0].image, alone.image)
        if not reading.not_a_digit:
            assert reading.digit == alone.digit and reading.number == str(alone.digit)


def test_nothing_drawn_is_no_number_and_not_a_non_digit(predictor):
    reading = predictor.predict_number(np.zeros((280, 280, 4), np.uint8))
    assert reading.digits == [] and reading.number is None and reading.digit is None and not reading.not_a_digit
    assert reading.as_dict()["digits"] == [] and reading.guess is None


@pytest.mark.parametrize("symbol", ["plus", "w", "x", "y"])
def test_letters_and_symbols_are_flagged(predictor, handwriting_dir, symbol):
    images, _, ids = load_bhmsds_symbols(handwriting_dir / "bhmsds", (symbol,))
    held_out = images[ids >= 1200][::6]  # files the network never trained on
    readings = [predictor.predict_number(image) for image in held_out]
    flagged = sum(r.not_a_digit for r in readings)
    assert flagged >= 0.6 * len(readings), f"{flagged}/{len(readings)} {symbol} flagged"
    flagged_one = next(r for r in readings if r.not_a_digit)
    assert flagged_one.number is None and flagged_one.digit is None and flagged_one.guess  # the guess stays


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_scribbles_and_shapes_are_mostly_flagged(predictor, kind):
    rng = np.random.default_rng(123)
    readings = [predictor.predict_number(render_scribble(kind, rng)) for _ in range(15)]
    assert sum(r.not_a_digit for r in readings) >= 8


def test_real_digits_are_hardly_ever_refused_or_split(predictor, writers):
    digits = [d for by_label in writers.values() for ds in by_label.values() for d in ds[:2]]
    rng = np.random.default_rng(0)
    from mnist_core.handwriting import random_canvas_drawing

    readings = [predictor.predict_number(random_canvas_drawing(d, rng)) for d in digits]
    refused = sum(r.not_a_digit or len(r.digits) != 1 for r in readings)
    assert refused <= 0.02 * len(readings), f"{refused} of {len(readings)}"
