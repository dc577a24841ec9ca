"""LiteRT copies compute what their Keras models compute, on real MNIST digits."""

import threading

import keras
import numpy as np
import pytest

from mnist_core.architectures import ARCHITECTURES, as_model_input, build
from mnist_core.litert import LiteRTModel, to_litert
from mnist_core.store import ModelStore


def one_at_a_time(copy: LiteRTModel, images: np.ndarray) -> np.ndarray:
    return np.concatenate([copy(image[None]) for image in as_model_input(images)])


def test_the_shipped_default_has_a_copy_that_gives_its_probabilities_and_test_error(mnist):
    """The page shows the card's test error; the copy that answers for one drawing must earn it too."""
    store = ModelStore()
    model, card = store.load("default")
    flatbuffer = store.load_litert("default", card)
    assert flatbuffer is not None, "models/default.tflite is missing or does not match models/default.json"
    got = one_at_a_time(LiteRTModel(flatbuffer), mnist.x_test)  # all 10,000 real test digits
    expected = np.asarray(model.predict(as_model_input(mnist.x_test), batch_size=500, verbose=0))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.flatnonzero(got.argmax(1) != mnist.y_test).tolist() == card.misclassified


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_converts_to_the_same_function(architecture, mnist):
    model = build(architecture)  # untrained weights compute a function just as well
    images = mnist.x_test[:20]
    got = one_at_a_time(LiteRTModel(to_litert(model)), images)
    np.testing.assert_allclose(got, np.asarray(model(as_model_input(images), training=False)), atol=1e-5)


def test_calls_from_several_threads_get_their_own_answers(trained_store, mnist):
    """The page serves every session from one copy: concurrent calls must not mix their images."""
    model, card = trained_store.load("small")
    copy = LiteRTModel(trained_store.load_litert("small", card))
    images = mnist.x_test[:400]
    expected = one_at_a_time(copy, images)
    results = {}

    def work(part: int) -> None:
        chosen = range(part, len(images), 4)
        results[part] = (chosen, one_at_a_time(copy, images[list(chosen)]))

    threads = [threading.Thread(target=work, args=(part,)) for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for chosen, got in results.values():
        np.testing.assert_allclose(got, expected[list(chosen)], atol=1e-6)


def test_a_flatbuffer_of_another_shape_is_refused_with_a_reason(tmp_path):
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    other.export(tmp_path / "other.tflite", format="litert", verbose=False)
    with pytest.raises(ValueError, match=r"not a LiteRT copy of an MNIST model: it maps \(1, 8\) to \(1, 3\)"):
        LiteRTModel((tmp_path / "other.tflite").read_bytes())
