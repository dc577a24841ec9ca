"""Train the digit-or-not network (:mod:`mnist_core.gate`) and write it, with its card, to the model store.

    python -m mnist_core.gate_training --mnist-data ../shared/data/mnist --handwriting-data ../shared/data

Three classes. Digits (0): MNIST training digits and the digits of every
training source (:data:`mnist_core.sources.EXTRA_SOURCES`: USPS train,
optdigits .tra, CVL train, BHMSDS' digits, pendigits writers 1-15), all
normalised by ``to_mnist`` as a drawing is. Not digits (1): BHMSDS' ``minus plus
w x y z`` of file ids below :data:`BHMSDS_HELD_OUT_FROM` (the rest are the
benchmark's) and the scribbles of :data:`mnist_core.scribbles.TRAINING_KINDS`
(seed 1; the benchmark draws seed 0). Two digits (2): two MNIST training digits,
and two pen digits of one training writer drawn as :func:`render_pen_number`
draws them (seed 1), side by side, apart or touching, read as one, so that an uncut pair is not taken
for one digit and a w is not cut into a "41" (:mod:`mnist_core.numbers`).
BHMSDS' ``slash`` is a 1 and its ``dot`` a speck; neither is used. No benchmark
writer is read. 10% of each class is held back to set the threshold: the lowest
score (1 - P(digit)) at which at most :data:`REFUSED_DIGITS` of the held-back
digits are refused. About 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

BHMSDS_NOT_DIGITS = ("minus", "plus", "w", "x", "y", "z")
BHMSDS_HELD_OUT_FROM = 1200  # file ids 1200-1499 of each symbol are the benchmark's
MNIST_DIGITS = 30_000
BHMSDS_DIGITS = 6_000
SCRIBBLES_PER_KIND = 1_600
PAIRS = 1_500
PEN_PAIRS = 3_000
REFUSED_DIGITS = 0.002  # the share of held-back digits the threshold may refuse
SEED = 1


def not_digit_symbols(folder: Path, held_out: bool, names: tuple[str, ...] = BHMSDS_NOT_DIGITS):
    """BHMSDS' non-digit symbols ``names`` of the training ids (or the benchmark's): raw images and names."""
    from mnist_core.handwriting import load_bhmsds_symbols

    images, labels, ids = load_bhmsds_symbols(folder / "bhmsds", names)
    chosen = (ids >= BHMSDS_HELD_OUT_FROM) == held_out
    return images[chosen], labels[chosen]


def digit_pairs(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images of two random digits of ``x`` (28x28, ink high) side by side, each a 28x56 canvas."""
    first, second = rng.integers(0, len(x), n), rng.integers(0, len(x), n)
    overlap = rng.integers(0, 9, n)  # from apart to touching
    out = np.zeros((n, 28, 56), np.uint8)
    for i in range(n):
        out[i, :, :28] = x[first[i]]
        at = slice(28 - overlap[i], 56 - overlap[i])
        out[i, :, at] = np.maximum(out[i, :, at], x[second[i]])
    return out


def pen_pairs(folder: Path, rng: np.random.Generator) -> list[np.ndarray]:
    """:data:`PEN_PAIRS` canvases of two pen digits of one training writer (1-15), apart or touching."""
    from mnist_core.handwriting import PENDIGITS_TRAINING_WRITERS, load_pendigits, render_pen_number

    digits = [d for d in load_pendigits(folder / "pendigits" / "pendigits-orig.tra")
              if d.writer in PENDIGITS_TRAINING_WRITERS]
    by_writer = {}
    for d in digits:
        by_writer.setdefault(d.writer, []).append(d)
    out = []
    for _ in range(PEN_PAIRS):
        mine = by_writer[int(rng.choice(list(by_writer)))]
        pair = [mine[k] for k in rng.choice(len(mine), 2, replace=False)]
        out.append(render_pen_number(pair, stroke_width=int(rng.integers(12, 29)),
                                     height_fraction=float(rng.uniform(0.45, 0.75)),
                                     gaps=float(rng.uniform(-0.1, 0.3))))
    return out


def build_network():
    """A small CNN: 28x28 to (digit, not a digit, two digits) probabilities, ~110,000 weights."""
    import keras
    from keras import layers

    from mnist_core.architectures import INPUT_SHAPE

    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="not_a_digit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_core.gate_training", description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-data", default=os.environ.get("MNIST_DATA"), help="default: $MNIST_DATA")
    parser.add_argument("--handwriting-data", default=os.environ.get("HANDWRITING_DATA"),
                        help="default: $HANDWRITING_DATA")
    parser.add_argument("--out", type=Path, default=None, help="model store folder (default: models/)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--leave-out", default="", metavar="NAME,...",
                        help="BHMSDS symbols not to train on (to measure how the network does on unseen kinds)")
    args = parser.parse_args(argv)
    if not args.mnist_data or not args.handwriting_data:
        parser.error("give --mnist-data and --handwriting-data, or set MNIST_DATA and HANDWRITING_DATA")
    os.nice(10)
    started = time.monotonic()

    import keras

    from mnist_core.augmentation import AugmentationSettings, augment_batch
    from mnist_core.data import load_mnist
    from mnist_core.gate import GATE_FOLDER, GATE_NAME
    from mnist_core.litert import to_litert
    from mnist_core.scribbles import TRAINING_KINDS, render_scribble
    from mnist_core.sources import EXTRA_SOURCES, load_extra_source
    from mnist_core.store import default_models_dir, file_sha256

    rng = np.random.default_rng(SEED)
    folder = Path(args.handwriting_data)
    leave_out = {name.strip() for name in args.leave_out.split(",") if name.strip()}
    digits, records = [], []
    mnist = load_mnist(args.mnist_data)
    digits.append(mnist.x_train[rng.choice(len(mnist.x_train), MNIST_DIGITS, replace=False)])
    records.append({"name": "mnist", "path": str(args.mnist_data), "sha256": mnist.sha256, "count": MNIST_DIGITS,
                    "class": "digit"})
    for name in EXTRA_SOURCES:
        images, _labels, record = load_extra_source(name, folder)
        if name == "bhmsds":
            images = images[rng.choice(len(images), BHMSDS_DIGITS, replace=False)]
        digits.append(images)
        records.append({"name": name, "path": record.path, "sha256": record.sha256, "count": len(images),
                        "class": "digit"})
        print(f"{name}: {len(images)} digits", file=sys.stderr)
    digits = np.concatenate(digits)

    symbols = tuple(s for s in BHMSDS_NOT_DIGITS if s not in leave_out)
    raw, _names = not_digit_symbols(folder, held_out=False, names=symbols)
    others = [_normalised(raw)]
    bhmsds = folder / "bhmsds" / "bhmsds.zip"
    records.append({"name": "bhmsds-symbols", "path": str(bhmsds), "sha256": file_sha256(bhmsds),
                    "count": len(others[0]), "class": "not a digit",
                    "description": f"BHMSDS {' '.join(symbols)}, file ids below {BHMSDS_HELD_OUT_FROM}"})
    scribbles = [render_scribble(kind, rng) for kind in TRAINING_KINDS for _ in range(SCRIBBLES_PER_KIND)]
    others.append(_normalised(scribbles))
    records.append({"name": "scribbles", "count": len(scribbles), "class": "not a digit",
                    "description": f"mnist_core.scribbles {', '.join(TRAINING_KINDS)} (seed {SEED})"})
    pairs = np.concatenate([_normalised(digit_pairs(mnist.x_train, PAIRS, rng)), _normalised(pen_pairs(folder, rng))])
    records.append({"name": "digit-pairs", "count": PAIRS, "class": "two digits",
                    "description": f"two MNIST training digits side by side, read as one (seed {SEED})"})
    records.append({"name": "pen-pairs", "count": PEN_PAIRS, "class": "two digits",
                    "description": f"two pen digits of one of pendigits writers 1-15 side by side (seed {SEED})"})
    others = np.concatenate(others)
    print(f"{len(digits)} digits, {len(others)} not digits ({time.monotonic() - started:.0f} s)", file=sys.stderr)

    x = np.concatenate([digits, others, pairs])
    y = np.concatenate([np.zeros(len(digits), np.int64), np.ones(len(others), np.int64),
                        np.full(len(pairs), 2, np.int64)])
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_val = len(x) // 10
    x_val, y_val, x_train, y_train = x[:n_val], y[:n_val], x[n_val:], y[n_val:]

    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    augment = AugmentationSettings()
    train = (tf.data.Dataset.from_tensor_slices((x_train[..., None], y_train)).shuffle(len(x_train), seed=SEED)
             .batch(128).map(lambda a, b: (augment_batch(tf.cast(a, tf.float32) / 255.0, augment), b)))
    network = build_network()
    # Digits outnumber the rest: weigh digits as much as the rest together.
    weight = {c: (0.5 if c == 0 else 0.25) * len(y_train) / (y_train == c).sum() for c in range(3)}
    network.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                     metrics=["accuracy"])
    network.fit(train, epochs=args.epochs, class_weight=weight, verbose=2)

    probabilities = network.predict(x_val[..., None].astype(np.float32) / 255.0, batch_size=1000, verbose=0)
    scores = 1.0 - probabilities[:, 0]
    digit_scores, other_scores = np.sort(scores[y_val == 0]), scores[y_val == 1]
    threshold = float(digit_scores[int(np.ceil((1 - REFUSED_DIGITS) * len(digit_scores))) - 1]) + 1e-6
    measured = {"held_back_digits": int(len(digit_scores)), "held_back_not_digits": int(len(other_scores)),
                "digits_refused": round(float((digit_scores >= threshold).mean()), 5),
                "not_digits_flagged": round(float((other_scores >= threshold).mean()), 5),
                "pairs_told_from_not_digits": round(float(
                    (probabilities[y_val == 2, 2] > probabilities[y_val == 2, 1]).mean()), 5)}
    print(f"threshold {threshold:.4f}: {measured}", file=sys.stderr)

    out = (args.out or default_models_dir()) / GATE_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    keras_path, litert_path = out / f"{GATE_NAME}.keras", out / f"{GATE_NAME}.tflite"
    shipped = build_network()  # uncompiled, so saved without the optimizer's state: a third of the size
    shipped.set_weights(network.get_weights())
    shipped.save(keras_path)
    litert_path.write_bytes(to_litert(network))
    card = {
        "name": GATE_NAME,
        "what": "[digit, not a digit, two digits] softmax of a 28x28 to_mnist image; its score is 1 - P(digit)",
        "parameters": int(network.count_params()),
        "threshold": threshold,
        "threshold_rule": f"the lowest score refusing at most {REFUSED_DIGITS:.1%} of the held-back digits",
        "training": {"epochs": args.epochs, "batch_size": 128, "learning_rate": 1e-3, "augment": True,
                     "seed": SEED, "held_back": 0.1, "left_out_symbols": sorted(leave_out)},
        "data": records,
        "measured_on_held_back": measured,
        "files": {"keras_sha256": file_sha256(keras_path), "tflite_sha256": file_sha256(litert_path)},
        "command": "python -m mnist_core.gate_training " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "training_seconds": round(time.monotonic() - started),
    }
    (out / f"{GATE_NAME}.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"saved {out} ({card['training_seconds']} s)")
    return 0


def _normalised(raw) -> np.ndarray:
    """Each image through ``to_mnist``, as a drawing; the blank ones left out."""
    from mnist_core.preprocessing import to_mnist

    prepared = (to_mnist(np.asarray(image)) for image in raw)
    return np.stack([p.image for p in prepared if not p.blank])


if __name__ == "__main__":
    sys.exit(main())
