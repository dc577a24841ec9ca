"""Every architecture of the zoo: its shape, its size, and that it learns real MNIST."""

import numpy as np
import pytest

from mnist_core.architectures import ARCHITECTURES, as_model_input, build, ensemble
from mnist_core.evaluation import evaluate
from mnist_core.settings import TrainingSettings
from mnist_core.training import train

# Parameter counts of the Keras tutorial's networks, which ours must match layer for layer.
TUTORIAL_PARAMETERS = {"baseline": 623_290, "simple": 592_074, "large": 59_933}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_maps_images_to_ten_probabilities(name):
    model = build(name)
    out = np.asarray(model(as_model_input(np.zeros((3, 28, 28), np.uint8)), training=False))
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", list(TUTORIAL_PARAMETERS))
def test_tutorial_networks_have_the_tutorials_size(name):
    assert build(name).count_params() == TUTORIAL_PARAMETERS[name]


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'.*baseline, simple, large, fast, best"):
        build("resnet")


def test_as_model_input_scales_to_unit_range():
    x = as_model_input(np.array([[0, 255]], np.uint8).repeat(28, 0).repeat(14, 1))
    assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0


def test_ensemble_averages_its_members():
    members = [build("baseline"), build("baseline")]
    x = as_model_input(np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    expected = (np.asarray(members[0](x)) + np.asarray(members[1](x))) / 2
    np.testing.assert_allclose(np.asarray(ensemble(members)(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, epochs, batch_size, min_accuracy",
    # Batch normalisation's moving averages need a few hundred steps to settle,
    # hence `best` gets smaller batches (more steps) than the tutorial's networks.
    [("baseline", 2, 64, 0.85), ("simple", 2, 64, 0.90), ("large", 3, 64, 0.85), ("best", 3, 32, 0.90)],
)
def test_learns_real_mnist_far_beyond_chance(mnist, name, epochs, batch_size, min_accuracy):
    """Trained briefly on 6,000 real training images, judged on 2,000 real test images it never saw."""
    data = type(mnist)(mnist.x_train[:6000], mnist.y_train[:6000], mnist.x_test[:2000], mnist.y_test[:2000],
                       source="slice", sha256="")
    result = train(data, TrainingSettings(name, epochs=epochs, batch_size=batch_size, validation_split=0.1))
    accuracy = 1 - evaluate(result.model, data.x_test, data.y_test).test_error / 100
    assert accuracy >= min_accuracy, f"{name}: {accuracy:.3f} accuracy, chance is 0.1"
