"""Training-time augmentation: the ways real handwriting differs from MNIST's.

People write slightly rotated, sheared, shifted and scaled digits, with pens
thicker or thinner than MNIST's. :func:`augment_batch` draws one random affine
transform per image (a single resampling, so the image is blurred once) and
then thickens or thins some strokes by one pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import tensorflow as tf


@dataclass(frozen=True)
class AugmentationSettings:
    """Ranges of the random changes; each is drawn uniformly per image."""

    rotation_degrees: float = 12.0
    shear_degrees: float = 10.0
    zoom: float = 0.12  # scale in [1 - zoom, 1 + zoom]
    shift_pixels: float = 2.5
    aspect: float = 0.0  # width/height multiplied by a factor in [1/(1 + aspect), 1 + aspect]
    thicken_probability: float = 0.2
    thin_probability: float = 0.15


def augment_batch(images: tf.Tensor, settings: AugmentationSettings = AugmentationSettings()) -> tf.Tensor:
    """Randomly transform a batch of (N, 28, 28, 1) float images in [0, 1]."""
    n = tf.shape(images)[0]
    images = _random_affine(images, n, settings)
    return _random_stroke_width(images, n, settings)


def _random_affine(images: tf.Tensor, n: tf.Tensor, s: AugmentationSettings) -> tf.Tensor:
    def uniform(limit: float) -> tf.Tensor:
        return tf.random.uniform([n], -limit, limit)

    angle = uniform(math.radians(s.rotation_degrees))
    shear = uniform(math.radians(s.shear_degrees))
    scale = 1.0 + uniform(s.zoom)
    stretch = tf.exp(uniform(math.log(1.0 + s.aspect)))  # width / height, from 1/(1+aspect) to 1+aspect
    tx, ty = uniform(s.shift_pixels), uniform(s.shift_pixels)
    # Forward map F = scale * diag(sqrt(stretch), 1/sqrt(stretch)) * rotation * shear
    # (x to the right, y down). affine_transform wants the inverse: for each
    # output pixel, the input pixel it samples.
    cos, sin, tan = tf.cos(angle), tf.sin(angle), tf.tan(shear)
    sx, sy = scale * tf.sqrt(stretch), scale / tf.sqrt(stretch)
    f00, f01 = sx * cos, sx * (cos * tan - sin)
    f10, f11 = sy * sin, sy * (sin * tan + cos)
    det = f00 * f11 - f01 * f10
    a0, a1, b0, b1 = f11 / det, -f01 / det, -f10 / det, f00 / det
    centre = 13.5
    a2 = centre - a0 * (centre + tx) - a1 * (centre + ty)
    b2 = centre - b0 * (centre + tx) - b1 * (centre + ty)
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return keras.ops.image.affine_transform(images, transforms, interpolation="bilinear", fill_mode="constant",
                                            fill_value=0.0, data_format="channels_last")


def _random_stroke_width(images: tf.Tensor, n: tf.Tensor, s: AugmentationSettings) -> tf.Tensor:
    thick = tf.nn.max_pool2d(images, ksize=2, strides=1, padding="SAME")
    thin = -tf.nn.max_pool2d(-images, ksize=2, strides=1, padding="SAME")
    draw = tf.random.uniform([n, 1, 1, 1])
    out = tf.where(draw < s.thicken_probability, thick, images)
    return tf.where(draw > 1.0 - s.thin_probability, thin, out)
