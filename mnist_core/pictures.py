"""Pictures of what a network does with a drawing: saliency heat maps, feature-map grids, filters.

Plain RGB/grey uint8 arrays, so the page (``st.image``) and the command line
(``explain --out``, through Pillow) draw the same pictures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:  # the page draws with these before TensorFlow is loaded
    from mnist_core.explain import Explanation

SCALE = 6  # screen pixels per MNIST pixel in the heat maps


def _enlarged(image: np.ndarray, scale: int) -> np.ndarray:
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def heat_map(image: np.ndarray, saliency: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """The 28x28 ``image`` in dim grey with ``saliency`` over it in black-red-yellow ("hot"): (H, W, 3) uint8.

    The colours are scaled to the map's own maximum, so the hottest pixel is always yellow.
    """
    peak = float(saliency.max())
    t = saliency / peak if peak > 0 else np.zeros_like(saliency)
    hot = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=-1)
    grey = (image.astype(np.float32) / 255.0 * 0.35)[..., None]
    return _enlarged((np.maximum(hot, grey) * 255).round().astype(np.uint8), scale)


def grid(maps: np.ndarray, columns: int = 8, scale: int = 2, gap: int = 1) -> np.ndarray:
    """Channels of ``maps`` (H, W, C) side by side, ``columns`` a row, white on black, one scale for all
    (the layer's strongest response is white, so weak filters look weak): (rows*(H*scale+gap), ...) uint8."""
    height, width, channels = maps.shape
    peak = float(np.abs(maps).max())
    values = np.clip(maps / peak, 0, 1) if peak > 0 else np.zeros_like(maps)
    rows = -(-channels // columns)
    cell_h, cell_w = height * scale + gap, width * scale + gap
    out = np.full((rows * cell_h - gap, min(columns, channels) * cell_w - gap), 60, np.uint8)
    for c in range(channels):
        r, k = divmod(c, columns)
        out[r * cell_h:r * cell_h + height * scale, k * cell_w:k * cell_w + width * scale] = _enlarged(
            (values[..., c] * 255).round().astype(np.uint8), scale)
    return out


def filters(kernels: np.ndarray, columns: int = 8, scale: int = 8) -> np.ndarray:
    """A first convolution's kernels (k, k, 1, F) as pictures, ``columns`` a row: positive weights white,
    negative black, zero grey, one scale for all: uint8."""
    weights = np.asarray(kernels, np.float32)[:, :, 0, :]
    peak = float(np.abs(weights).max())
    centred = 0.5 + 0.5 * (weights / peak if peak > 0 else weights)
    return grid(centred, columns=columns, scale=scale)


def explanation_picture(explanation: Explanation, title: str = "") -> Image.Image:
    """One picture of an explanation: the model's input and the two saliency maps, then each convolution's
    feature maps (for ``explain --out``)."""
    e = explanation
    panels = [(np.stack([_enlarged(e.image, SCALE)] * 3, axis=-1), "what the model sees")]
    if e.digit is not None:
        panels.append((heat_map(e.image, e.saliency), f"why {e.digit} ({e.probabilities[e.digit]:.0%})"))
        panels.append((heat_map(e.image, e.runner_up_saliency),
                       f"for {e.runner_up} ({e.probabilities[e.runner_up]:.0%})"))
    maps = [(f"{layer.name}: {'x'.join(map(str, layer.feature_maps.shape))} feature maps", grid(layer.feature_maps))
            for layer in e.layers if layer.feature_maps is not None]
    line, pad = 14, 8
    width = max([pad + len(panels) * (28 * SCALE + pad)] + [m.shape[1] + 2 * pad for _, m in maps])
    height = line + pad + 28 * SCALE + line + pad + sum(m.shape[0] + line + pad for _, m in maps)
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((pad, 2), title or f"{e.method}; layers: {e.network}", fill="black")
    y = line + pad
    for i, (panel, caption) in enumerate(panels):
        x = pad + i * (28 * SCALE + pad)
        picture.paste(Image.fromarray(panel), (x, y))
        draw.text((x, y + 28 * SCALE + 1), caption, fill="black")
    y += 28 * SCALE + line + pad
    for name, m in maps:
        draw.text((pad, y), name, fill="black")
        picture.paste(Image.fromarray(m).convert("RGB"), (pad, y + line))
        y += m.shape[0] + line + pad
    return picture
