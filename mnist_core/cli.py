"""Command line: ``python -m mnist_core {train,evaluate,predict,models}``.

Every error the user can fix (bad data, unknown model, unreadable image,
settings out of range) is one line on stderr and exit status 1; wrong
arguments are argparse's usage message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

# Only what every command needs: TensorFlow (~3 s) loads only for the commands that use a model.
from mnist_core.data import ENV_VAR as DATA_ENV_VAR  # noqa: E402
from mnist_core.data import DataError  # noqa: E402
from mnist_core.settings import ARCHITECTURE_NAMES, PRESETS, SCHEDULES, TrainingSettings  # noqa: E402
from mnist_core.store import DEFAULT_MODEL, ModelStoreError  # noqa: E402

USER_ERRORS = (DataError, ModelStoreError, ValueError, OSError)
EXIT_CANCELLED = 3  # `train` stopped on request (SIGTERM or Ctrl-C); nothing was saved
PROGRESS_INTERVAL = 0.25  # seconds between two per-batch JSON progress lines


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; no model was saved", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_core", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="model store folder (default: models/)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_help = f"MNIST directory, Keras .npz or Kaggle .csv (default: ${DATA_ENV_VAR}, else Keras' download)"

    train = commands.add_parser("train", help="train a network and save it in the model store",
                                description="Settings not given come from --preset, else from the defaults shown.")
    defaults = TrainingSettings()
    train.add_argument("--preset", choices=list(PRESETS), default=None,
                       help="named settings (the tutorial's, quick, best); other options override them")
    train.add_argument("--arch", choices=list(ARCHITECTURE_NAMES),
                       help=f"architecture (default: {defaults.architecture})")
    train.add_argument("--epochs", type=int, help=f"default: {defaults.epochs}")
    train.add_argument("--batch-size", type=int, help=f"default: {defaults.batch_size}")
    train.add_argument("--learning-rate", type=float, help=f"default: {defaults.learning_rate}")
    train.add_argument("--schedule", choices=list(SCHEDULES),
                       help="learning-rate schedule; auto = cosine for best, constant otherwise (default: auto)")
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random rotation, shear, zoom, shift and stroke width while training (default: off)")
    train.add_argument("--validation-split", type=float,
                       help=f"fraction of the training set held out for validation, 0 = train on all "
                            f"(default: {defaults.validation_split})")
    train.add_argument("--members", type=int, help="train this many networks and average them (default: 1)")
    train.add_argument("--seed", type=int, help="default: 0")
    train.add_argument("--data", default=None, help=data_help)
    train.add_argument("--csv-split", choices=["holdout", "tutorial"], default="holdout",
                       help="how a Kaggle CSV is split (see README)")
    train.add_argument("--extra-data", type=Path, default=None, metavar="FOLDER",
                       help="also train on USPS' training set and optdigits' .tra digits from this handwriting "
                            "folder (holding usps/ and optdigits/), normalised like MNIST; the test set stays MNIST's")
    train.add_argument("--crossed-sevens", action="store_true",
                       help="also train on a copy of each training 7 with a bar through its stem, as much of "
                            "the world writes it (MNIST's writers hardly did)")
    train.add_argument("--box-filled", type=int, default=0, metavar="N",
                       help="also train on copies of N random training digits (with --extra-data's) stretched to "
                            "fill their box, as some collections normalise digits and as people draw wide ones")
    train.add_argument("--name", default=None, help="model name (default: ARCH-EPOCHSe)")
    train.add_argument("--progress-jsonl", action="store_true",
                       help="report progress as JSON lines on stdout instead of a progress bar")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="measure a saved model's test error")
    evaluate.add_argument("--model", default=DEFAULT_MODEL)
    evaluate.add_argument("--data", default=None, help=data_help)
    evaluate.add_argument("--csv-split", choices=["holdout", "tutorial"], default="holdout")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="recognise digits drawn in image files")
    predict.add_argument("--model", default=DEFAULT_MODEL)
    predict.add_argument("--json", action="store_true", help="print one JSON object per image")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.set_defaults(run=run_predict)

    models = commands.add_parser("models", help="list the saved models and their measured test error")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=run_models)

    litert = commands.add_parser(
        "litert", help="(re)make a saved model's LiteRT copy, which recognises one drawing in ~0.3 ms",
        description="Every save writes one; this is for a model saved without it, or whose copy does not match "
                    "its card. The .keras file is not touched.")
    litert.add_argument("--model", default=DEFAULT_MODEL)
    litert.set_defaults(run=run_litert)
    return parser


def _store(args):
    from mnist_core.store import ModelStore

    return ModelStore(args.models_dir)


def settings_from_arguments(args) -> TrainingSettings:
    """The preset's settings (or the defaults), with every option given on the command line applied."""
    base = PRESETS[args.preset] if args.preset else TrainingSettings()
    given = {
        "architecture": args.arch, "epochs": args.epochs, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "schedule": args.schedule, "augment": args.augment,
        "validation_split": args.validation_split, "members": args.members, "seed": args.seed,
    }
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def run_train(args) -> int:
    from tqdm import tqdm

    from mnist_core.data import load_mnist
    from mnist_core.training import TrainingCancelled
    from mnist_core.workflow import train_and_save

    settings = settings_from_arguments(args).check()
    name = args.name or f"{settings.architecture}-{settings.epochs}e"
    store = _store(args)
    store.paths(name)  # validates the name before any work is done
    data = load_mnist(args.data, csv_split=args.csv_split)
    data = _with_extras(data, args)
    print(f"data: {data}", file=sys.stderr)
    bar = None

    def show_bar(p):
        nonlocal bar
        if bar is None or (p.epoch_end is False and p.batch == 1):
            if bar is not None:
                bar.close()
            member = f"net {p.member}/{p.members} " if p.members > 1 else ""
            bar = tqdm(total=p.batches, desc=f"{member}epoch {p.epoch}/{p.epochs}", unit="batch", file=sys.stderr)
        if p.epoch_end:
            val = f" val_acc={p.val_accuracy:.4f}" if p.val_accuracy is not None else ""
            bar.set_postfix_str(f"loss={p.loss:.4f} acc={p.accuracy:.4f}{val} {p.images_per_second:.0f} img/s")
        elif p.batch > bar.n:  # batch reports may arrive slightly out of order
            bar.update(p.batch - bar.n)
            if p.batch % 20 == 0:
                bar.set_postfix_str(f"loss={p.loss:.4f} acc={p.accuracy:.4f} left {p.seconds_left:.0f}s")

    command = "python -m mnist_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    stop = threading.Event()
    previous_handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        progress = _json_progress() if args.progress_jsonl else show_bar
        card = train_and_save(data, settings, name, store, progress=progress, stop=stop, command=command)
    except TrainingCancelled as exc:
        print(f"error: {exc}; no model was saved", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if bar is not None:
            bar.close()
    if args.progress_jsonl:
        print(json.dumps({"event": "saved", "card": asdict(card)}), flush=True)
    print(f"saved {name}: test error {card.test_error:.2f}% on {card.test_set['n_test']} test images "
          f"({card.training_seconds:.0f} s)")
    return 0


def _with_extras(data, args):
    """``data`` with what --extra-data, --crossed-sevens and --box-filled add to its training set."""
    from mnist_core.data import with_extra_training
    from mnist_core.styles import box_filled, crossed_sevens

    extras = []
    if args.extra_data is not None:
        from mnist_core.handwriting import load_extra_training_digits

        extras.append(load_extra_training_digits(args.extra_data))
    if args.box_filled:  # drawn from the training digits loaded so far
        x = np.concatenate([data.x_train, *(images for images, _, _ in extras)])
        y = np.concatenate([data.y_train, *(labels for _, labels, _ in extras)])
        extras.append(box_filled(x, y, args.box_filled, seed=args.seed or 0))
    if args.crossed_sevens:  # drawn on the loaded training set's 7s only
        extras.append(crossed_sevens(data.x_train, data.y_train, seed=args.seed or 0))
    if not extras:
        return data
    images, labels, sources = zip(*extras, strict=True)
    return with_extra_training(data, np.concatenate(images), np.concatenate(labels), " + ".join(sources))


def _json_progress():
    """A progress callback printing JSON lines: every epoch end, and batches at most every 0.25 s."""
    last = 0.0

    def report(p):
        nonlocal last
        now = time.monotonic()
        if p.epoch_end or now - last >= PROGRESS_INTERVAL:
            last = now
            print(json.dumps({"event": "progress", "progress": asdict(p)}), flush=True)

    return report


def run_evaluate(args) -> int:
    from mnist_core.data import load_mnist
    from mnist_core.evaluation import evaluate

    model, card = _store(args).load(args.model)
    data = load_mnist(args.data, csv_split=args.csv_split)
    measured = evaluate(model, data.x_test, data.y_test)
    if args.json:
        print(json.dumps({"model": args.model, "source": data.source, **measured.summary()}))
    else:
        print(f"{args.model}: test error {measured.test_error:.2f}% "
              f"({len(measured.misclassified)} of {measured.n_test} wrong) on {data.source}")
    return 0


def run_predict(args) -> int:
    from mnist_core.predictor import Predictor
    from mnist_core.preprocessing import read_image

    predictor = Predictor.load(args.model, _store(args))
    failures = 0
    for path in args.images:
        try:
            prediction = predictor.predict(read_image(path))
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        if args.json:
            print(json.dumps({"path": str(path), **prediction.as_dict()}))
        elif prediction.digit is None:
            print(f"{path}: nothing drawn")
        else:
            note = ("" if prediction.sure else " (not sure)") + (
                " (strokes too thick for its size: draw it larger or thinner)" if prediction.thick_strokes else "")
            print(f"{path}: {prediction.digit} ({100 * prediction.confidence:.1f}%){note}")
    return 1 if failures else 0


def run_models(args) -> int:
    entries = _store(args).list()
    if args.json:
        print(json.dumps([
            {"name": e.name, "ok": e.ok, "problem": e.problem,
             "architecture": e.card.architecture if e.card else None,
             "test_error": e.card.test_error if e.card else None}
            for e in entries
        ]))
        return 0
    if not entries:
        print("no models saved; train one with 'python -m mnist_core train'")
    for e in entries:
        if e.ok:
            print(f"{e.name:24s} {e.card.architecture:12s} test error {e.card.test_error:.2f}% "
                  f"(n={e.card.test_set.get('n_test')})")
        else:
            print(f"{e.name:24s} BROKEN: {e.problem}")
    return 0


def run_litert(args) -> int:
    path = _store(args).make_litert_copy(args.model)
    print(f"{args.model}: LiteRT copy written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
