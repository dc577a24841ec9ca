"""Handwritten-digit recognition on MNIST with Keras: data, models, training, prediction.

    from mnist_core import Predictor, load_mnist
    predictor = Predictor.load()          # the shipped default model
    predictor.predict(canvas_rgba).digit

Names are imported on first use, so ``from mnist_core import to_mnist, load_mnist,
TrainingSettings, ModelStore`` does not pay for loading TensorFlow (~3 s).
"""

import os
from importlib import import_module

# TensorFlow's C++ start-up messages (CUDA probing, CPU features) say nothing a user of this package can act on.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_PUBLIC = {
    "load_mnist": "mnist_core.data",
    "MnistData": "mnist_core.data",
    "DataError": "mnist_core.data",
    "split_validation": "mnist_core.data",
    "Predictor": "mnist_core.predictor",
    "Prediction": "mnist_core.predictor",
    "to_mnist": "mnist_core.preprocessing",
    "ModelStore": "mnist_core.store",
    "ModelCard": "mnist_core.card",
    "TrainingSettings": "mnist_core.settings",
    "TrainingProgress": "mnist_core.progress",
    "train": "mnist_core.training",
    "train_and_save": "mnist_core.workflow",
    "evaluate": "mnist_core.evaluation",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mnist_core' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
