"""Command line: ``python -m mnist_core {train,finetune,evaluate,predict,explain,models,litert}``.

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
from dataclasses import replace
from pathlib import Path

# Only what every command needs: TensorFlow (~3 s) loads only for the commands that use a model.
from mnist_core.architectures import ARCHITECTURES
from mnist_core.data import ENV_VAR as DATA_ENV_VAR
from mnist_core.data import DataError
from mnist_core.settings import PRESETS, SCHEDULES, TrainingSettings
from mnist_core.store import DEFAULT_MODEL, ModelStoreError, check_name

USER_ERRORS = (DataError, ModelStoreError, ValueError, OSError)


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
    train.add_argument("--arch", choices=list(ARCHITECTURES),
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
    train.add_argument("--extra-sources", type=_names, default=None, metavar="NAME,...",
                       help="also train on these writers, normalised like MNIST: usps, optdigits, cvl, bhmsds, "
                            "pendigits (see README); the test set stays MNIST's")
    train.add_argument("--handwriting-data", default=None, metavar="FOLDER",
                       help="the folder holding usps/, optdigits/, cvl/, bhmsds/ and pendigits/ "
                            "(default: $HANDWRITING_DATA)")
    train.add_argument("--crossed-sevens", action=argparse.BooleanOptionalAction, default=None,
                       help="also train on a copy of each MNIST training 7 with a bar through its stem")
    train.add_argument("--slashed-zeros", action=argparse.BooleanOptionalAction, default=None,
                       help="also train on a copy of each MNIST training 0 with a slash through it")
    train.add_argument("--box-filled", type=int, default=None, metavar="N",
                       help="also train on copies of N random training digits stretched to fill their box")
    train.add_argument("--base-model", default=None, metavar="NAME",
                       help="start from this saved model's weights (fine-tuning; same architecture and members)")
    train.add_argument("--settings-json", default=None, metavar="JSON",
                       help="all settings as one JSON object (TrainingSettings.to_json); other options override it")
    train.add_argument("--name", default=None, help="model name (default: ARCH-EPOCHSe)")
    train.add_argument("--owner", type=_owner, default="", metavar="OWNER",
                       help="record this owner id on the card (mnist_core.identity; the page gives its user's): "
                            "only a save by the same owner may replace a model (default: none, the command line)")
    train.add_argument("--progress-jsonl", action="store_true",
                       help="report progress as JSON lines on stdout instead of a progress bar "
                            "(mnist_core.protocol)")
    train.add_argument("--watch-image", type=Path, default=None, metavar="IMAGE",
                       help="read this drawing (any image predict takes) at every epoch's end and report its "
                            "probabilities: in the progress lines, or a line per epoch")
    train.add_argument("--niceness", type=int, default=0, metavar="N",
                       help="lower this process' scheduling priority by N first (the page's runner uses 10)")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="measure a saved model's test error")
    evaluate.add_argument("--model", default=DEFAULT_MODEL)
    evaluate.add_argument("--data", default=None, help=data_help)
    evaluate.add_argument("--csv-split", choices=["holdout", "tutorial"], default="holdout")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="recognise digits drawn in image files: one digit or a number, "
                                                  "or 'this does not look like a digit'")
    predict.add_argument("--model", default=DEFAULT_MODEL)
    predict.add_argument("--json", action="store_true",
                         help="print one JSON object per image: path, digit, number, not_a_digit, probabilities, "
                              "digits, ...")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.set_defaults(run=run_predict)

    explain = commands.add_parser(
        "explain", help="show why a model reads each image as it does: saliency and every layer",
        description="Integrated-gradients saliency for the predicted digit and the runner-up, and each layer's "
                    "name, type, output shape and (convolutions) feature maps; see mnist_core.explain.")
    explain.add_argument("--model", default=DEFAULT_MODEL)
    explain.add_argument("--json", action="store_true",
                         help="print one JSON object per image: path, digit, image, saliency, layers, ...")
    explain.add_argument("--out", type=Path, default=None, metavar="PATH",
                         help="write a picture: a .png file for one image, else a folder with one STEM.png each")
    explain.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    explain.set_defaults(run=run_explain)

    models = commands.add_parser("models", help="list the saved models and their measured test error")
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=run_models)

    litert = commands.add_parser(
        "litert", help="(re)make a saved model's LiteRT copy, which recognises one drawing in ~0.3 ms",
        description="Every save writes one; this is for a model saved without it, or whose copy does not match "
                    "its card. The .keras file is not touched.")
    litert.add_argument("--model", default=DEFAULT_MODEL)
    litert.set_defaults(run=run_litert)

    finetune = commands.add_parser(
        "finetune", help="adapt a saved model to someone's handwriting: fine-tune it on their labelled drawings",
        description="Holds back part of the drawings (stratified), measures the base model on them, fine-tunes it "
                    "on the rest with a replay of MNIST training digits, then measures the new model on them and "
                    "on MNIST's test set, and saves it (mnist_core.adapt).")
    finetune.add_argument("--model", required=True, metavar="BASE", help="the saved model to start from")
    finetune.add_argument("--drawings", required=True, type=Path, metavar="DIR_OR_CSV",
                          help="a folder of digit folders 0-9 holding PNG or JPEG drawings of any size and either "
                               "polarity (the zip the page gives, unpacked), or a Kaggle-format train.csv")
    finetune.add_argument("--name", required=True, help="the new model's name")
    finetune.add_argument("--data", default=None, help="MNIST, for the replay and the test error: " + data_help)
    finetune.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    finetune.add_argument("--owner", type=_owner, default="", metavar="OWNER",
                          help="record this owner id on the card (as train --owner)")
    finetune.add_argument("--progress-jsonl", action="store_true",
                          help="report progress as JSON lines on stdout, as train does (mnist_core.protocol)")
    finetune.add_argument("--niceness", type=int, default=0, metavar="N",
                          help="lower this process' scheduling priority by N first")
    finetune.set_defaults(run=run_finetune)
    return parser


def _store(args):
    from mnist_core.store import ModelStore

    return ModelStore(args.models_dir)


def _owner(text: str) -> str:
    from mnist_core.identity import OWNER_CHARACTERS, is_owner

    if text and not is_owner(text):
        raise argparse.ArgumentTypeError(f"{text!r:.40} is not an owner id ({OWNER_CHARACTERS} hex digits, "
                                         "as mnist_core.identity.owner_of makes them)")
    return text


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def settings_from_arguments(args) -> TrainingSettings:
    """The preset's (or --settings-json's, or the default) settings, with every option given applied."""
    if args.settings_json is not None:
        base = TrainingSettings.from_json(args.settings_json)
    else:
        base = PRESETS[args.preset] if args.preset else TrainingSettings()
    given = {
        "architecture": args.arch, "epochs": args.epochs, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "schedule": args.schedule, "augment": args.augment,
        "validation_split": args.validation_split, "members": args.members, "seed": args.seed,
        "extra_sources": args.extra_sources, "handwriting_data": args.handwriting_data,
        "crossed_sevens": args.crossed_sevens, "slashed_zeros": args.slashed_zeros, "box_filled": args.box_filled,
        "base_model": args.base_model,
    }
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def run_train(args) -> int:
    from mnist_core.data import load_mnist
    from mnist_core.protocol import EXIT_CANCELLED
    from mnist_core.workflow import train_and_save

    if args.niceness:
        os.nice(args.niceness)
    settings = settings_from_arguments(args).check()
    name = args.name or f"{settings.architecture}-{settings.epochs}e"
    store = _store(args)
    check_name(name)  # before any work is done
    store.check_replaceable(name, args.owner)  # and again when it is saved
    watch = None
    if args.watch_image is not None:
        from mnist_core.preprocessing import read_image, to_mnist

        watch = to_mnist(read_image(args.watch_image)).image
    data = load_mnist(args.data, csv_split=args.csv_split)
    print(f"data: {data}", file=sys.stderr)
    if added := ", ".join([*settings.extra_sources, *settings.synthetic]):
        print(f"adding to the training set: {added} (normalising them takes a few minutes)", file=sys.stderr)

    card = _until_stopped(args, lambda **run: train_and_save(data, settings, name, store, watch=watch,
                                                             owner=args.owner, **run))
    if card is None:
        return EXIT_CANCELLED
    if args.progress_jsonl:
        from mnist_core.protocol import saved_line

        print(saved_line(card), flush=True)
    print(f"saved {name}: test error {card.test_error:.2f}% on {card.test_set.n_test} test images "
          f"({card.training_seconds:.0f} s)")
    return 0


def _until_stopped(args, work):
    """Run ``work(progress=..., stop=..., command=...)``, a training that saves a model, and return its card;
    None when it was stopped on request (SIGTERM or Ctrl-C set ``stop``; said on stderr, nothing saved).
    Progress goes out as JSON lines with ``--progress-jsonl``, else as a bar or a log on stderr."""
    from mnist_core.training import TrainingCancelled

    command = "python -m mnist_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    stop = threading.Event()
    previous_handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    show = _json_progress() if args.progress_jsonl else _ProgressDisplay(sys.stderr)
    try:
        return work(progress=show, stop=stop, command=command)
    except TrainingCancelled as exc:
        print(f"error: {exc}; no model was saved", file=sys.stderr)
        return None
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if isinstance(show, _ProgressDisplay):
            show.close()


class _ProgressDisplay:
    """Training progress on a stream: a tqdm bar per epoch on a terminal; in a log or a pipe, a line per
    epoch and one every LOG_INTERVAL seconds between (a bar would write a line at each update)."""

    LOG_INTERVAL = 30.0

    def __init__(self, stream):
        self.stream, self.bar, self.last_line = stream, None, time.monotonic()
        self.terminal = stream.isatty()

    def __call__(self, p) -> None:
        network = f"net {p.member}/{p.members} " if p.members > 1 else ""
        where = f"{network}epoch {p.epoch}/{p.epochs}"
        if not self.terminal:
            if p.epoch_end or time.monotonic() - self.last_line >= self.LOG_INTERVAL:
                self.last_line = time.monotonic()
                val = f" val_acc={p.val_accuracy:.4f}" if p.val_accuracy is not None else ""
                done = "done" if p.epoch_end else f"batch {p.batch}/{p.batches}"
                print(f"{where} {done}: loss={p.loss:.4f} acc={p.accuracy:.4f}{val} "
                      f"{p.images_per_second:.0f} img/s, {p.seconds_left:.0f} s left{_watched(p)}",
                      file=self.stream, flush=True)
            return
        from tqdm import tqdm

        if self.bar is None or (p.epoch_end is False and p.batch == 1):
            self.close()
            self.bar = tqdm(total=p.batches, desc=where, unit="batch", file=self.stream)
        if p.epoch_end:
            val = f" val_acc={p.val_accuracy:.4f}" if p.val_accuracy is not None else ""
            self.bar.set_postfix_str(f"loss={p.loss:.4f} acc={p.accuracy:.4f}{val} {p.images_per_second:.0f} img/s"
                                     f"{_watched(p)}")
        elif p.batch > self.bar.n:  # batch reports may arrive slightly out of order
            self.bar.update(p.batch - self.bar.n)
            if p.batch % 20 == 0:
                self.bar.set_postfix_str(f"loss={p.loss:.4f} acc={p.accuracy:.4f} left {p.seconds_left:.0f}s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _watched(p) -> str:
    """", watched drawing: 7 (93%)" at an epoch's end when a drawing is watched, else ""."""
    probabilities = p.watched.probabilities if p.watched is not None else None
    if probabilities is None:
        return ""
    digit = max(range(len(probabilities)), key=probabilities.__getitem__)
    return f", watched drawing: {digit} ({probabilities[digit]:.0%})"


def _json_progress():
    """A progress callback printing mnist_core.protocol's lines: every epoch end, batches at most every 0.25 s."""
    from mnist_core.protocol import PROGRESS_INTERVAL, progress_line

    last = 0.0

    def report(p):
        nonlocal last
        now = time.monotonic()
        if p.epoch_end or now - last >= PROGRESS_INTERVAL:
            last = now
            print(progress_line(p), flush=True)

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
            reading = predictor.predict_number(read_image(path))
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        if args.json:
            print(json.dumps({"path": str(path), **reading.as_dict()}))
        elif reading.guess is None:
            print(f"{path}: nothing drawn")
        elif reading.not_a_digit:
            print(f"{path}: this does not look like a digit (the model's best guess: {reading.guess})")
        else:
            note = ("" if reading.sure else " (not sure)") + (
                " (strokes too thick for its size: draw it larger or thinner)"
                if any(d.thick_strokes for d in reading.digits) else "")
            print(f"{path}: {reading.number} ({', '.join(f'{100 * d.confidence:.1f}%' for d in reading.digits)}){note}")
    return 1 if failures else 0


def run_explain(args) -> int:
    from mnist_core.pictures import explanation_picture
    from mnist_core.predictor import Predictor
    from mnist_core.preprocessing import read_image

    if args.out is not None and len(args.images) > 1 and args.out.suffix.lower() == ".png":
        raise ValueError(f"--out {args.out}: with {len(args.images)} images give a folder, not a .png file")
    predictor = Predictor.load(args.model, _store(args))
    failures = 0
    for path in args.images:
        try:
            explanation = predictor.explain(read_image(path))
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        e = explanation
        if args.out is not None:
            out = args.out if len(args.images) == 1 else args.out / f"{path.stem}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            explanation_picture(e, title=f"{path.name} read by {args.model}").save(out)
        if args.json:
            print(json.dumps({"path": str(path), **e.as_dict()}))
        elif e.digit is None:
            print(f"{path}: nothing drawn")
        else:
            picture = f"; picture: {out}" if args.out is not None else ""
            print(f"{path}: {e.digit} ({e.probabilities[e.digit]:.1%}), runner-up {e.runner_up} "
                  f"({e.probabilities[e.runner_up]:.1%}); {len(e.layers)} layers{picture}")
    return 1 if failures else 0


def run_models(args) -> int:
    entries = _store(args).list()
    if args.json:
        print(json.dumps([
            {"name": e.name, "ok": e.ok, "problem": e.problem,
             "architecture": e.card.architecture if e.card else None,
             "test_error": e.card.test_error if e.card else None,
             "preprocessing": e.card.preprocessing if e.card else None,
             "older_preprocessing": e.card.older_preprocessing if e.card else None}
            for e in entries
        ]))
        return 0
    if not entries:
        print("no models saved; train one with 'python -m mnist_core train'")
    for e in entries:
        if e.ok:
            error = e.card.test_error
            measured = f"test error {error:.2f}%" if error is not None else "test error not measured"
            older = " (older preprocessing)" if e.card.older_preprocessing else ""
            print(f"{e.name:24s} {e.card.architecture:12s} {measured} (n={e.card.test_set.n_test}){older}")
        else:
            print(f"{e.name:24s} BROKEN: {e.problem}")
    return 0


def run_litert(args) -> int:
    path = _store(args).make_litert_copy(args.model)
    print(f"{args.model}: LiteRT copy written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def run_finetune(args) -> int:
    from mnist_core.adapt import finetune, read_drawings
    from mnist_core.data import load_mnist
    from mnist_core.protocol import EXIT_CANCELLED, saved_line

    if args.niceness:
        os.nice(args.niceness)
    store = _store(args)
    check_name(args.name)  # the cheap checks first: before the drawings, the model and MNIST are read
    store.check_replaceable(args.name, args.owner)
    if not store.inspect(args.model).ok:
        store.load(args.model)  # raises, saying what is wrong with it
    drawings = read_drawings(args.drawings)
    mnist = load_mnist(args.data)
    card = _until_stopped(args, lambda **run: finetune(args.model, drawings, args.name, store, mnist=mnist,
                                                       owner=args.owner, **run))
    if card is None:
        return EXIT_CANCELLED
    a = card.adaptation
    if args.progress_jsonl:
        print(saved_line(card), flush=True)
    elif args.json:
        print(json.dumps({"name": card.name, "base_model": args.model, "drawings": a.count, "trained": a.trained,
                          "held_back": a.held_back, "held_back_accuracy_before": a.accuracy_before,
                          "held_back_accuracy_after": a.accuracy_after, "test_error": card.test_error,
                          "base_test_error": card.base_model.test_error, "n_test": card.test_set.n_test,
                          "training_seconds": card.training_seconds}))
        return 0
    if a.held_back:
        held = (f"held-back drawings ({a.held_back}): {a.accuracy_before:.1f}% right before, "
                f"{a.accuracy_after:.1f}% after")
    else:
        held = "too few drawings to hold any back (a digit needs 2), so no accuracy on them was measured"
    base_error = card.base_model.test_error
    print(f"saved {card.name}, fine-tuned from {args.model} on {a.trained} of {a.count} drawings; {held}; "
          f"MNIST test error {card.test_error:.2f}% on {card.test_set.n_test} test images"
          + (f" (was {base_error:.2f}%)" if base_error is not None else ""))
    return 0
