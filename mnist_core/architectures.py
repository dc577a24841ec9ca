"""The model zoo: the Keras MNIST tutorial's three networks, our fastest CNN and our best.

:data:`ARCHITECTURES` is the one list of them: each entry's name, how the page
labels it, its default learning-rate schedule and its builder. To add a
network, write a builder here and add an entry; the command line, the settings'
checks and the page's form follow. Every builder takes no data and returns an
uncompiled ``keras.Model`` that maps (N, 28, 28, 1) float32 images in [0, 1] to
(N, 10) class probabilities.

Keras is imported inside the builders, so reading the table (the command line's
``--help``, the settings' checks) does not load TensorFlow (~3 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

INPUT_SHAPE = (28, 28, 1)
N_CLASSES = 10


def as_model_input(images: np.ndarray) -> np.ndarray:
    """MNIST-convention uint8 images (N, 28, 28) -> the models' float32 input (N, 28, 28, 1) in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    return (images.astype(np.float32) / 255.0)[..., None]


def baseline() -> keras.Model:
    """The tutorial's baseline: 784 -> Dense 784 relu -> Dense 10 softmax (~1.8-2% error)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Flatten(),
            layers.Dense(784, activation="relu", kernel_initializer="he_normal"),
            layers.Dense(N_CLASSES, activation="softmax"),
        ],
        name="baseline",
    )


def simple() -> keras.Model:
    """The tutorial's simple CNN: Conv 32 5x5, max-pool, dropout 0.2, dense 128 (~1% error)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, 5, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(N_CLASSES, activation="softmax"),
        ],
        name="simple",
    )


def large() -> keras.Model:
    """The tutorial's larger CNN: Conv 30 5x5, Conv 15 3x3, dense 128 and 50 (~0.8% error)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(30, 5, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(15, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(50, activation="relu"),
            layers.Dense(N_CLASSES, activation="softmax"),
        ],
        name="large",
    )


def fast() -> keras.Model:
    """Our quickest CNN to 99%: Conv 32 5x5 stride 2, max-pool, Conv 64 3x3, dense 128 (~0.8% error in
    3 epochs, ~8 s on 2 cores: bench_time_to_99). The stride and the pool before the second convolution
    make it a quarter of the tutorial's CNNs' arithmetic per image, so it sees more images in the time."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, 5, strides=2, activation="relu"),  # 12x12
            layers.MaxPooling2D(2),  # 6x6
            layers.Conv2D(64, 3, activation="relu"),  # 4x4
            layers.Dropout(0.1),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(N_CLASSES, activation="softmax"),
        ],
        name="fast",
    )


def _conv_bn(x, filters: int, kernel: int, strides: int = 1):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    # momentum 0.9 (not Keras' 0.99): the moving statistics must follow the
    # weights within a few hundred steps, or a short run predicts badly.
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def best() -> keras.Model:
    """Our CNN for the lowest error a 2-core CPU can train: two conv blocks with
    batch normalisation and strided downsampling, then a 128-filter head.

    Trained with augmentation (rotation, shift, zoom, shear, stroke thickness)
    and a cosine learning-rate schedule it reaches ~0.3-0.4% test error alone.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=INPUT_SHAPE)
    x = _conv_bn(inputs, 32, 3)
    x = _conv_bn(x, 32, 3)
    x = _conv_bn(x, 32, 5, strides=2)  # 14x14
    x = layers.Dropout(0.25)(x)
    x = _conv_bn(x, 64, 3)
    x = _conv_bn(x, 64, 3)
    x = _conv_bn(x, 64, 5, strides=2)  # 7x7
    x = layers.Dropout(0.25)(x)
    x = _conv_bn(x, 128, 3)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(N_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="best")


def ensemble(members: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model that averages the probabilities of several trained ``members``."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=INPUT_SHAPE)
    for i, member in enumerate(members):
        member.name = f"member_{i}"
    outputs = layers.Average()([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name=name)


def networks(model: keras.Model) -> list[keras.Model]:
    """The networks a model is made of: the members of an :func:`ensemble`, or the model itself."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.Model)] or [model]


@dataclass(frozen=True)
class Architecture:
    """One network of the zoo: what the page calls it, how it trains by default, and its builder."""

    name: str
    label: str  # for the page's form, with the error it reaches as the README measures it
    schedule: str  # the learning-rate schedule "auto" means for it: "constant" or "cosine"
    builder: Callable[[], keras.Model]


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture("baseline", "baseline: one dense layer (~2% error)", "constant", baseline),
    Architecture("simple", "simple: small CNN (~1% error)", "constant", simple),
    Architecture("large", "large: two-layer CNN (~0.8% error)", "constant", large),
    Architecture("fast", "fast: strided CNN (~0.8% error in seconds)", "cosine", fast),
    Architecture("best", "best: batch-norm CNN (~0.35% with augmentation; slowest)", "cosine", best),
]}


def build(name: str) -> keras.Model:
    """Build the architecture called ``name`` (a key of :data:`ARCHITECTURES`)."""
    try:
        return ARCHITECTURES[name].builder()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}") from None
