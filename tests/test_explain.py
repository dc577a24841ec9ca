"""Explanations on real pen digits: what the saliency shows is what the answer leans on; every layer listed."""

import keras
import numpy as np
import pytest

from mnist_core.architectures import ARCHITECTURES, build, ensemble
from mnist_core.explain import Explainer, gradients, integrated_gradients
from mnist_core.predictor import Predictor
from mnist_core.sources import pen_drawings


@pytest.fixture(scope="module")
def default():
    return Predictor.load()  # the shipped model, trained on other writers than those below


@pytest.fixture(scope="module")
def held_out(handwriting_dir, default):
    """120 digits of pendigits' held-out writers, drawn as canvas drawings, with the default's answers."""
    drawings, _ = pen_drawings(handwriting_dir, training_writers=False, seed=0)
    chosen = [drawings[i] for i in np.linspace(0, len(drawings) - 1, 120).astype(int)]
    predictions = default.predict_many(chosen)
    return chosen, np.stack([p.image for p in predictions]), np.array([p.digit for p in predictions])


def _wipe(image, pixels):
    flat = image.ravel().copy()
    flat[pixels] = 0
    return flat.reshape(image.shape)


def test_wiping_the_top_ranked_ink_hurts_the_answer_more_than_wiping_random_ink(default, held_out):
    _, images, digits = held_out
    saliency = np.maximum(integrated_gradients(default.model, images, digits), 0)
    rng = np.random.default_rng(0)
    top, random = [], []
    for image, s in zip(images, saliency, strict=True):
        ink = np.flatnonzero(image.ravel())
        k = round(0.1 * len(ink))
        top.append(_wipe(image, ink[np.argsort(s.ravel()[ink])[::-1][:k]]))
        random.append(_wipe(image, rng.choice(ink, k, replace=False)))
    rows = np.arange(len(images))
    before = default.probabilities(images)[rows, digits]
    drop_top = before - default.probabilities(np.stack(top))[rows, digits]
    drop_random = before - default.probabilities(np.stack(random))[rows, digits]
    assert np.mean(drop_top > drop_random) >= 0.85
    assert drop_top.mean() > 5 * drop_random.mean()


def test_plain_gradients_fail_the_same_test_more_often(default, held_out):
    """Why integrated gradients: ranked by plain gradients, the wiped ink matters far less."""
    _, images, digits = held_out
    rows = np.arange(len(images))
    before = default.probabilities(images)[rows, digits]
    drops = {}
    for name, saliency in (("ig", np.maximum(integrated_gradients(default.model, images, digits), 0)),
                           ("plain", gradients(default.model, images, digits))):
        wiped = []
        for image, s in zip(images, saliency, strict=True):
            ink = np.flatnonzero(image.ravel())
            wiped.append(_wipe(image, ink[np.argsort(s.ravel()[ink])[::-1][:round(0.1 * len(ink))]]))
        drops[name] = (before - default.probabilities(np.stack(wiped))[rows, digits]).mean()
    assert drops["ig"] > 3 * drops["plain"]


def test_saliency_lies_on_the_ink_and_picks_out_part_of_it(default, held_out):
    drawings, _, _ = held_out
    for drawing in drawings[:20]:
        e = default.explain(drawing)
        assert e.saliency.shape == (28, 28) and e.saliency.dtype == np.float32 and (e.saliency >= 0).all()
        ink = e.image > 0
        assert e.saliency[~ink].sum() == 0  # nothing is attributed to where there is no ink
        ranked = np.sort(e.saliency[ink])[::-1]
        assert ranked[: len(ranked) // 4].sum() >= 0.5 * ranked.sum()  # a quarter of the ink holds most of it
        assert not np.array_equal(e.saliency, e.runner_up_saliency)


def test_an_explanation_agrees_with_the_prediction(default, held_out):
    drawings, _, _ = held_out
    for drawing in drawings[:10]:
        e, p = default.explain(drawing), default.predict(drawing)
        assert e.digit == p.digit and np.array_equal(e.image, p.image)
        np.testing.assert_allclose(e.probabilities, p.probabilities, atol=1e-5)
        assert e.runner_up == int(np.argsort(p.probabilities)[-2])


def test_it_survives_what_streamlit_does_after_every_run(default, held_out):
    drawings, _, _ = held_out
    first = default.explain(drawings[0])
    keras.backend.clear_session(free_memory=False)
    again = default.explain(drawings[0])
    np.testing.assert_allclose(first.saliency, again.saliency, rtol=1e-4, atol=1e-7)


def test_nothing_drawn_is_explained_as_nothing(default):
    e = default.explain(np.zeros((280, 280, 4), np.uint8))
    assert e.digit is None and e.runner_up is None
    assert not e.saliency.any() and not e.runner_up_saliency.any()


def test_the_default_ensembles_layers_and_feature_maps(default, held_out):
    e = default.explain(held_out[0][0])
    member = default.model.get_layer("member_0")
    assert [layer.name for layer in e.layers] == [layer.name for layer in member.layers[1:]]
    assert "first of its 2 networks" in e.network
    convolutions = [layer for layer in e.layers if layer.type == "Conv2D"]
    assert len(convolutions) == 7 and all(layer.feature_maps is not None for layer in convolutions)
    assert convolutions[0].feature_maps.shape == (28, 28, 32) and convolutions[-1].feature_maps.shape == (7, 7, 128)
    assert all((layer.feature_maps >= 0).all() for layer in convolutions)  # after batch norm and ReLU
    assert sum(layer.parameters for layer in e.layers) == member.count_params()
    assert e.as_dict()["layers"][0] == {"name": e.layers[0].name, "type": "Conv2D",
                                        "output_shape": [28, 28, 32], "parameters": 288}


@pytest.mark.parametrize("architecture", [*ARCHITECTURES, "simple x2"])
def test_every_architecture_and_an_ensemble_can_be_explained(architecture, held_out):
    name, _, members = architecture.partition(" x")
    model = build(name) if not members else ensemble([build(name) for _ in range(int(members))])
    image = held_out[1][0]
    probabilities = np.asarray(model(image[None, ..., None] / 255.0, training=False))[0]
    e = Explainer(model).explain(image, probabilities)
    network = model if not members else model.get_layer("member_0")
    shapes = [tuple(layer.output.shape[1:]) for layer in network.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    assert [layer.output_shape for layer in e.layers] == shapes
    assert e.saliency.shape == e.runner_up_saliency.shape == (28, 28)
    maps = [layer.feature_maps for layer in e.layers if layer.feature_maps is not None]
    assert len(maps) == sum(layer.type == "Conv2D" for layer in e.layers)
    assert (len(maps) == 0) == (name == "baseline")
    for layer in e.layers:
        if layer.feature_maps is not None:
            assert layer.feature_maps.shape == layer.output_shape
