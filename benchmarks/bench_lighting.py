"""Photos of paper in uneven light: how many digits are read, with and without evening out the lighting.

Real digits of writers the shipped default never saw (300 of CVL's ``valid`` split, seed 0), each made into
a phone-like photo: the 28x28 scan enlarged to 400x460, its ink (dark, grey level 40) laid on paper whose
brightness falls off linearly in a random direction by 0-128 grey levels from 230 (a lamp on one side, a
shadow), blurred (radius 1.5) and saved as a JPEG (quality 80). Each photo is read as the page reads an
uploaded picture (``read_image_bytes``, then ``predict_number``), and once more without
``even_out_lighting`` (the JPEG decoded alone). A digit counts as read when the number read is its label.

    python benchmarks/bench_lighting.py [--model default] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from mnist_core.handwriting import load_cvl
from mnist_core.predictor import Predictor
from mnist_core.preprocessing import read_image_bytes
from mnist_core.store import ModelStore

ROOT = Path(__file__).resolve().parent.parent
GRADIENTS = (0, 16, 32, 64, 96, 128)  # grey levels the paper's brightness falls across the photo
SIZE = (400, 460)


def photo(scan: np.ndarray, gradient: int, rng: np.random.Generator) -> bytes:
    """A JPEG of ``scan``'s ink on paper lit unevenly by ``gradient`` grey levels, in a random direction."""
    width, height = SIZE
    angle = rng.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[0:height, 0:width]
    ramp = np.cos(angle) * columns / width + np.sin(angle) * rows / height
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    paper = Image.fromarray(np.rint(230 - gradient * ramp).astype(np.uint8))
    ink = Image.fromarray(scan).convert("L").resize(SIZE).point(lambda v: 255 - v)
    picture = Image.composite(Image.new("L", SIZE, 40), paper, ink).filter(ImageFilter.GaussianBlur(1.5))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=os.environ.get("HANDWRITING_DATA"))
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lighting.json")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set HANDWRITING_DATA")
    predictor = Predictor.load(args.model, ModelStore(args.models_dir))
    images, labels, _ = load_cvl(args.data / "cvl", "valid")
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(images), args.count, replace=False)
    rows = []
    print(f"model {args.model!r}, {args.count} CVL valid digits as photos; read right, % (evened out / not)")
    for gradient in GRADIENTS:
        right = {"evened": 0, "as decoded": 0}
        for i in chosen:
            jpeg = photo(images[i], gradient, rng)
            decoded = np.array(Image.open(io.BytesIO(jpeg)))
            for how, image in (("evened", read_image_bytes(jpeg)), ("as decoded", decoded)):
                right[how] += predictor.predict_number(image).number == str(labels[i])
        row = {"gradient": gradient, **{k: round(100 * v / args.count, 2) for k, v in right.items()}}
        rows.append(row)
        print(f"  light falling by {gradient:3d} grey levels: {row['evened']:6.2f}% / {row['as decoded']:6.2f}%",
              flush=True)
    args.out.write_text(json.dumps({"model": args.model, "digits": args.count, "source": "cvl valid",
                                    "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
