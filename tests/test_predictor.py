"""The Predictor on real pen strokes drawn onto canvases, as the app and the CLI use it."""

import keras
import numpy as np
import pytest

from mnist_core.handwriting import load_pendigits, render_pen_digit
from mnist_core.predictor import Predictor
from mnist_core.store import ModelStoreError

CANVASES = [  # size, ink, background: the app's default, a light page, a transparent canvas
    (280, (255, 255, 255, 255), (0, 0, 0, 255)),
    (200, (10, 10, 120, 255), (255, 255, 240, 255)),
    (400, (0, 0, 0, 255), (0, 0, 0, 0)),
]


@pytest.fixture(scope="module")
def predictor(trained_store):
    return Predictor.load("small", trained_store)


@pytest.fixture(scope="module")
def pen_digits(handwriting_dir):
    digits = load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")
    return digits[::75][:100]  # 100 digits from across the 30 writers


@pytest.mark.parametrize("size, ink, background", CANVASES)
def test_real_pen_digits_are_recognised(predictor, pen_digits, size, ink, background):
    canvases = [render_pen_digit(d, canvas_size=size, stroke_width=size // 14, ink=ink, background=background)
                for d in pen_digits]
    predictions = predictor.predict_many(canvases)
    right = sum(p.digit == d.label for p, d in zip(predictions, pen_digits, strict=True))
    # The fixture's model is small (2 epochs on 5,400 images); the default model scores far higher.
    assert right >= 75, f"{right}/100 right on {size}px canvases"


def test_predict_and_predict_many_agree(predictor, pen_digits):
    canvases = [render_pen_digit(d) for d in pen_digits[:12]] + [np.zeros((280, 280, 4), np.uint8)]
    together = predictor.predict_many(canvases)
    for canvas, batch_prediction in zip(canvases, together, strict=True):
        alone = predictor.predict(canvas)
        assert alone.digit == batch_prediction.digit
        np.testing.assert_allclose(alone.probabilities, batch_prediction.probabilities, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(alone.image, batch_prediction.image)


def test_predictions_survive_what_streamlit_does_after_every_run(predictor, pen_digits):
    """Streamlit calls keras.backend.clear_session() after each script run; answers must not change."""
    canvases = [render_pen_digit(d) for d in pen_digits[:5]]
    before = [predictor.predict(c) for c in canvases]
    for canvas, earlier in zip(canvases, before, strict=True):
        keras.backend.clear_session()
        again = predictor.predict(canvas)
        assert again.digit == earlier.digit
        np.testing.assert_allclose(again.probabilities, earlier.probabilities, rtol=1e-5, atol=1e-7)


def test_a_prediction_holds_what_the_model_saw(predictor, pen_digits):
    prediction = predictor.predict(render_pen_digit(pen_digits[0]))
    assert isinstance(prediction.digit, int) and 0 <= prediction.digit <= 9
    assert prediction.probabilities.shape == (10,)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert prediction.digit == int(np.argmax(prediction.probabilities))
    assert prediction.image.shape == (28, 28) and prediction.image.dtype == np.uint8
    assert prediction.image.max() > 200 and prediction.image[0].max() == 0  # ink high on a 0 background
    assert prediction.confidence == pytest.approx(prediction.probabilities.max())
    assert list(prediction.steps)[-1] == "centred 28x28"
    # The forward pass alone gives the same probabilities for the same 28x28 image.
    np.testing.assert_allclose(predictor.probabilities(prediction.image[None])[0], prediction.probabilities,
                               rtol=1e-5, atol=1e-6)


def test_a_prediction_says_when_the_strokes_are_too_thick_for_the_digit(predictor, pen_digits):
    blob = render_pen_digit(pen_digits[0], canvas_size=300, stroke_width=40, height_fraction=0.2)
    ordinary = render_pen_digit(pen_digits[0])
    assert predictor.predict(blob).thick_strokes and not predictor.predict(ordinary).thick_strokes
    assert [p.thick_strokes for p in predictor.predict_many([ordinary, blob])] == [False, True]


@pytest.mark.parametrize(
    "canvas",
    [
        np.zeros((280, 280, 4), np.uint8),  # the canvas' transparent start
        np.full((280, 280, 4), 255, np.uint8),  # solid ink: nothing stands out
        np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]),  # opaque black
    ],
    ids=["transparent", "solid", "black"],
)
def test_nothing_drawn_gives_no_digit(predictor, canvas):
    prediction = predictor.predict(canvas)
    assert prediction.digit is None and prediction.confidence == 0.0 and not prediction.sure
    assert prediction.as_dict() == {"digit": None, "probabilities": None, "thick_strokes": False}


def test_a_speck_gives_no_digit(predictor):
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[100:106, 140:146] = 255
    assert predictor.predict(canvas).digit is None


def test_unknown_model_is_a_clear_error(tmp_path):
    from mnist_core.store import ModelStore

    with pytest.raises(ModelStoreError, match="no model named 'default'"):
        Predictor.load("default", ModelStore(tmp_path))


def test_predict_number_reads_one_digit_exactly_as_predict(predictor, pen_digits):
    for digit in pen_digits[:10]:
        canvas = render_pen_digit(digit)
        reading, alone = predictor.predict_number(canvas), predictor.predict(canvas)
        assert len(reading.digits) == 1 and reading.boxes[0][2] > reading.boxes[0][0]
        np.testing.assert_array_equal(reading.digits[0].probabilities, alone.probabilities)
        assert reading.digit == (None if reading.not_a_digit else alone.digit)
        assert reading.number == (None if reading.not_a_digit else str(alone.digit))


def test_predict_number_finds_each_digit_of_a_number(predictor, pen_digits):
    from mnist_core.handwriting import render_pen_number

    same_writer = [d for d in pen_digits if d.writer == pen_digits[0].writer][:3] or pen_digits[:3]
    reading = predictor.predict_number(render_pen_number(same_writer, gaps=0.3))
    assert len(reading.digits) == len(same_writer) and reading.digit is None
    assert [box[0] for box in reading.boxes] == sorted(box[0] for box in reading.boxes)
    assert reading.guess == "".join(str(d.digit) for d in reading.digits)


def test_predict_number_of_nothing_drawn(predictor):
    reading = predictor.predict_number(np.zeros((280, 280, 4), np.uint8))
    assert reading.as_dict() == {"digit": None, "probabilities": None, "thick_strokes": False, "number": None,
                                 "not_a_digit": False, "guess": None, "digits": []}
