"""Why the network chose its digit: a saliency map, and what each layer made of the drawing.

The saliency is **integrated gradients** (Sundararajan et al., 2017): the
gradient of the digit's probability, averaged along the straight path from a
blank image (MNIST's black) to the drawing, times the drawing. Its values add
up to how much the ink raised the probability above that of a blank image, so
a pixel it ranks high is one the answer leans on: wiping the top-ranked ink
lowers the probability far more than wiping as much random ink does, which
plain gradients often fail to do (``benchmarks/bench_explain.py`` measures
both on held-out pen digits). Only the positive part is kept: what drove the
digit, not what spoke against it.

For an ensemble, the saliency explains the ensemble's answer (the average of
its networks' probabilities, what the page shows); the layers and feature maps
are its first network's, and :attr:`Explanation.network` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mnist_core.architectures import as_model_input, networks

STEPS = 16  # points on the path from blank to the drawing (midpoint rule); 16 and 64 rank pixels alike
# Layers whose output is still a picture of the drawing, and which follow a convolution within its block.
_AFTER_CONVOLUTION = (keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.ReLU)


@dataclass(frozen=True)
class LayerView:
    """One layer of the network: its name, type, output shape (without the batch), weights, and for a
    convolution the feature maps it made of this drawing, after its activation: (height, width, filters)."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    parameters: int
    feature_maps: np.ndarray | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "output_shape": list(self.output_shape),
                "parameters": self.parameters}


@dataclass(frozen=True)
class Explanation:
    """What the model saw, what it answered, and why: see :func:`Explainer.explain`."""

    image: np.ndarray  # (28, 28) uint8: the model's input
    digit: int | None  # None when nothing was drawn
    probabilities: np.ndarray  # (10,)
    saliency: np.ndarray  # (28, 28) float32 >= 0: what drove `digit`
    runner_up: int | None
    runner_up_saliency: np.ndarray  # (28, 28) float32 >= 0: what spoke for `runner_up`
    layers: tuple[LayerView, ...]
    network: str  # which network the layers are from, in words
    method: str = f"integrated gradients ({STEPS} steps from a blank image), positive part"

    def as_dict(self) -> dict:
        """JSON-ready: ``digit``, ``runner_up``, ``probabilities``, ``image`` (28x28 ints), ``saliency`` and
        ``runner_up_saliency`` (28x28 floats), ``layers`` (name, type, output_shape, parameters), ``network``,
        ``method``."""
        return {
            "digit": self.digit,
            "runner_up": self.runner_up,
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "image": self.image.astype(int).tolist(),
            "saliency": np.round(self.saliency, 6).tolist(),
            "runner_up_saliency": np.round(self.runner_up_saliency, 6).tolist(),
            "layers": [layer.as_dict() for layer in self.layers],
            "network": self.network,
            "method": self.method,
        }


def integrated_gradients(model: keras.Model, images: np.ndarray, targets: np.ndarray,
                         steps: int = STEPS, batch_size: int = 16) -> np.ndarray:
    """Integrated gradients of ``model``'s probability of class ``targets[i]`` for uint8 ``images[i]``
    (N, 28, 28), from a black image: (N, 28, 28) float32, signed (their sum is the probability's rise).
    ``batch_size`` images at a time (each is ``steps`` forward and backward passes)."""
    x, targets = as_model_input(images), np.asarray(targets, np.int32)
    return np.concatenate([
        _ig_graph(model, tf.constant(x[i:i + batch_size]), tf.constant(targets[i:i + batch_size, None]),
                  steps).numpy()[:, 0]
        for i in range(0, len(x), batch_size)]) if len(x) else np.zeros((0, 28, 28), np.float32)


def gradients(model: keras.Model, images: np.ndarray, targets: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Plain gradients' magnitude ("vanilla saliency"), for comparison: (N, 28, 28) float32 >= 0."""
    out = []
    for i in range(0, len(images), batch_size):
        x = tf.constant(as_model_input(images[i:i + batch_size]))
        with tf.GradientTape() as tape:
            tape.watch(x)
            chosen = tf.gather(model(x, training=False), tf.constant(np.asarray(targets[i:i + batch_size]), tf.int32),
                               axis=1, batch_dims=1)
        out.append(np.abs(tape.gradient(chosen, x).numpy()[..., 0]))
    return np.concatenate(out) if out else np.zeros((0, 28, 28), np.float32)


class Explainer:
    """Explains one model's answers; made once per model (it builds a feature-map model and a compiled
    integrated-gradients step)."""

    def __init__(self, model: keras.Model):
        self.model = model
        members = networks(model)
        self._network = members[0]
        self.network = (f"the first of its {len(members)} networks ({self._network.name}); the saliency explains "
                        f"their average" if len(members) > 1 else f"the network ({model.name})")
        layers = [layer for layer in self._network.layers if not isinstance(layer, keras.layers.InputLayer)]
        self._layers = [(layer.name, type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params())
                        for layer in layers]
        self._maps_of = _feature_map_layers(layers)
        outputs = [layer.output for layer in self._maps_of.values()]
        feature_maps = keras.Model(self._network.inputs, outputs) if outputs else None

        def saliency_and_maps(image, targets):
            maps = feature_maps([image], training=False) if feature_maps is not None else []
            return _ig_graph(model, image, targets[None])[0], maps if isinstance(maps, (list, tuple)) else [maps]

        # One compiled call per explanation, and compiled by XLA: Streamlit clears TensorFlow's kernel cache
        # after every script run (keras.backend.clear_session), which makes a plain tf.function ~5x slower at
        # its next call; XLA's compiled code is kept (bench_explain.py times both cases).
        self._compute = tf.function(saliency_and_maps, jit_compile=True, input_signature=[
            tf.TensorSpec((1, *model.input_shape[1:]), tf.float32), tf.TensorSpec((2,), tf.int32)])

    def explain(self, image: np.ndarray, probabilities: np.ndarray) -> Explanation:
        """Explain the answer ``probabilities`` (10,) to the 28x28 uint8 MNIST-style ``image`` (the model's input;
        all zeros and ``probabilities`` all zeros when nothing was drawn)."""
        blank = not probabilities.any()
        order = np.argsort(probabilities)[::-1]
        digit, runner_up = (None, None) if blank else (int(order[0]), int(order[1]))
        targets = np.array([0, 0] if blank else [digit, runner_up], np.int32)
        saliency, maps = self._compute(as_model_input(image), targets)
        saliency = np.zeros((2, 28, 28), np.float32) if blank else np.maximum(saliency.numpy(), 0.0)
        maps = {conv: np.asarray(m)[0] for conv, m in zip(self._maps_of, maps, strict=True)}
        layers = tuple(LayerView(name, kind, shape, parameters, maps.get(name))
                       for name, kind, shape, parameters in self._layers)
        return Explanation(image=image, digit=digit, probabilities=probabilities, saliency=saliency[0],
                           runner_up=runner_up, runner_up_saliency=saliency[1], layers=layers, network=self.network)


def _ig_graph(model, x, targets, steps: int = STEPS):
    """Integrated gradients of images ``x`` (N, 28, 28, 1) for classes ``targets`` (N, T): (N, T, 28, 28).

    One forward pass along the N paths, then one backward pass per target column (a persistent tape), so
    the runner-up's map costs a backward pass, not a second forward one.
    """
    alphas = (tf.range(steps, dtype=tf.float32) + 0.5) / steps
    path = alphas[None, :, None, None, None] * x[:, None]  # (N, steps, 28, 28, 1)
    flat = tf.reshape(path, tf.concat([[-1], tf.shape(x)[1:]], 0))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(flat)
        probabilities = tf.reshape(model(flat, training=False), [tf.shape(x)[0], steps, -1])
        chosen = [tf.gather(probabilities, targets[:, t], axis=2, batch_dims=1) for t in range(targets.shape[1])]
    maps = [tf.reduce_mean(tf.reshape(tape.gradient(c, flat), tf.shape(path)), axis=1) for c in chosen]
    return (x[:, None] * tf.stack(maps, axis=1))[..., 0]


def _feature_map_layers(layers: list) -> dict[str, keras.layers.Layer]:
    """Each convolution's name -> the layer whose output is its feature maps after activation: the convolution
    itself, or the batch normalisation and activation that follow it in its block."""
    chosen = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, keras.layers.Conv2D):
            j = i
            while j + 1 < len(layers) and isinstance(layers[j + 1], _AFTER_CONVOLUTION):
                j += 1
            chosen[layer.name] = layers[j]
    return chosen

