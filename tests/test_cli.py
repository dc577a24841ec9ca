"""`python -m mnist_core` on real files, run as a user runs it: a separate process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_core.preprocessing import PREPROCESSING_VERSION

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, models: Path | None = None, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prefix = ["--models-dir", str(models)] if models is not None else []
    return subprocess.run([sys.executable, "-m", "mnist_core", *prefix, *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def pen_drawings(handwriting_dir, tmp_path_factory):
    """Twenty real pen digits (two per class) drawn on canvases and saved as PNG and JPEG files,
    in both polarities."""
    from mnist_core.handwriting import load_pendigits, render_pen_digit

    digits = load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")
    folder = tmp_path_factory.mktemp("drawings")
    chosen = [next(d for d in digits[i * 300:] if d.label == label) for i, label in enumerate(list(range(10)) * 2)]
    paths = []
    for i, digit in enumerate(chosen):
        dark_on_light = i % 2 == 1
        rgba = render_pen_digit(digit, canvas_size=280, stroke_width=18,
                                ink=(20, 20, 20, 255) if dark_on_light else (255, 255, 255, 255),
                                background=(250, 250, 245, 255) if dark_on_light else (0, 0, 0, 255))
        path = folder / f"{i:02d}-{digit.label}.{'jpg' if i % 4 == 3 else 'png'}"
        Image.fromarray(rgba).convert("RGB").save(path)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_train_then_list_then_evaluate(small_mnist_npz, tmp_path):
    trained = cli("train", "--arch", "simple", "--epochs", "1", "--data", str(small_mnist_npz), "--name", "cli-made",
                  models=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "saved cli-made: test error" in trained.stdout
    card = json.loads((tmp_path / "cli-made.json").read_text())
    assert card["command"].startswith("python -m mnist_core ") and "--name cli-made" in card["command"]
    assert card["data"]["n_train"] == 5400 and card["test_set"]["n_test"] == 1000

    listed = cli("models", models=tmp_path)
    assert listed.returncode == 0 and "cli-made" in listed.stdout and f"{card['test_error']:.2f}%" in listed.stdout

    evaluated = cli("evaluate", "--model", "cli-made", "--data", str(small_mnist_npz), "--json", models=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    figures = json.loads(evaluated.stdout)
    assert figures["n_test"] == 1000
    assert figures["test_error"] == pytest.approx(card["test_error"], abs=1e-3)  # the card is the truth


@pytest.mark.slow
def test_train_with_extra_handwriting_and_synthetic_digits(small_mnist_npz, handwriting_dir, tmp_path):
    trained = cli("train", "--arch", "baseline", "--epochs", "1", "--validation-split", "0",
                  "--data", str(small_mnist_npz), "--extra-sources", "usps,optdigits",
                  "--handwriting-data", str(handwriting_dir), "--crossed-sevens", "--slashed-zeros",
                  "--box-filled", "1000", "--name", "more", models=tmp_path)
    assert trained.returncode == 0, trained.stderr
    card = json.loads((tmp_path / "more.json").read_text())
    # the small MNIST's 6,000, ~9,200 extra digits, 1,000 box-filled and a copy of most of its 7s and 0s
    assert card["data"]["n_train"] > 6000 + 9000 + 1000 + 500 + 500
    extra = {record["name"]: record for record in card["data"]["extra"]}
    assert list(extra) == ["usps", "optdigits", "box-filled", "crossed-sevens", "slashed-zeros"]
    assert "zip.train" in extra["usps"]["path"] and "optdigits-orig.tra" in extra["optdigits"]["path"]
    assert extra["box-filled"]["count"] == 1000 and "seed 0" in extra["box-filled"]["description"]
    assert sum(r["count"] for r in extra.values()) == card["data"]["n_train"] - 6000
    assert card["preprocessing"] == PREPROCESSING_VERSION
    assert card["training"]["extra_sources"] == ["usps", "optdigits"] and card["training"]["slashed_zeros"]
    assert card["test_set"]["n_test"] == 1000 and card["test_set"]["sha256"] == card["data"]["sha256"]


def test_handwriting_folder_without_the_files_is_a_clear_error(small_mnist_npz, tmp_path):
    result = cli("train", "--arch", "baseline", "--epochs", "1", "--data", str(small_mnist_npz),
                 "--extra-sources", "usps", "--handwriting-data", str(tmp_path), models=tmp_path / "models")
    assert result.returncode == 1
    assert "zip.train" in error_line(result) and "no such file" in error_line(result)


def test_unknown_extra_source_is_a_clear_error(small_mnist_npz, tmp_path):
    result = cli("train", "--extra-sources", "usps,klingon", "--data", str(small_mnist_npz),
                 models=tmp_path / "models")
    assert result.returncode == 1 and "klingon" in error_line(result) and "cvl" in error_line(result)


def test_evaluate_the_trained_model_on_full_mnist(trained_store, mnist_dir):
    result = cli("evaluate", "--model", "small", "--data", str(mnist_dir), "--json", models=trained_store.directory)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["n_test"] == 10_000 and 0 < figures["test_error"] < 15
    assert len(figures["misclassified"]) == round(figures["test_error"] * 100)


def test_predict_reads_real_drawings(trained_store, pen_drawings):
    result = cli("predict", "--model", "small", "--json", *map(str, pen_drawings), models=trained_store.directory)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(p) for p in pen_drawings]
    for line in lines:
        assert len(line["probabilities"]) == 10 and sum(line["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert line["digit"] == int(np.argmax(line["probabilities"])) and line["thick_strokes"] is False
    right = sum(line["digit"] == int(Path(line["path"]).stem.split("-")[1]) for line in lines)
    assert right >= 14, f"{right}/20 right"  # a small model trained 2 epochs on 5,400 images


def test_predict_says_when_the_strokes_are_too_thick(trained_store, handwriting_dir, tmp_path):
    from mnist_core.handwriting import load_pendigits, render_pen_digit

    digit = load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")[0]
    blob = tmp_path / "blob.png"
    Image.fromarray(render_pen_digit(digit, 300, stroke_width=40, height_fraction=0.2)).save(blob)
    as_json = cli("predict", "--model", "small", "--json", str(blob), models=trained_store.directory)
    assert json.loads(as_json.stdout)["thick_strokes"] is True
    as_text = cli("predict", "--model", "small", str(blob), models=trained_store.directory)
    assert "(strokes too thick for its size: draw it larger or thinner)" in as_text.stdout


def test_predict_says_nothing_drawn_for_a_blank_image(trained_store, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (280, 280), "white").save(blank)
    as_json = cli("predict", "--model", "small", "--json", str(blank), models=trained_store.directory)
    assert json.loads(as_json.stdout) == {"path": str(blank), "digit": None, "probabilities": None,
                                          "thick_strokes": False, "number": None, "not_a_digit": False,
                                          "guess": None, "digits": []}
    as_text = cli("predict", "--model", "small", str(blank), models=trained_store.directory)
    assert as_text.stdout.strip() == f"{blank}: nothing drawn"


def test_predict_reports_unreadable_files_and_carries_on(trained_store, pen_drawings, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    result = cli("predict", "--model", "small", "--json", str(text), str(pen_drawings[0]),
                 models=trained_store.directory)
    assert result.returncode == 1
    assert "notes.png" in error_line(result)
    assert json.loads(result.stdout)["path"] == str(pen_drawings[0])


def test_predict_refuses_a_huge_image_without_decoding_it(trained_store, tmp_path):
    from test_preprocessing import png_bytes

    huge = tmp_path / "huge.png"
    huge.write_bytes(png_bytes(20_000, 20_000))  # 400 megapixels in a few hundred kilobytes
    result = cli("predict", "--model", "small", str(huge), models=trained_store.directory)
    assert result.returncode == 1
    assert "huge.png: image is far larger than the 50,000,000 pixels accepted" in error_line(result)


def test_predict_refuses_an_empty_file(trained_store, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    result = cli("predict", "--model", "small", str(empty), models=trained_store.directory)
    assert result.returncode == 1 and "empty.png" in error_line(result) and "empty" in error_line(result)


def test_predict_says_a_directory_or_fifo_is_not_an_image_file(trained_store, tmp_path):
    (tmp_path / "drawings").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    result = cli("predict", "--model", "small", str(tmp_path / "drawings"), str(tmp_path / "pipe.png"),
                 models=trained_store.directory, timeout=120)  # a FIFO opened for reading would wait forever
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 1 and len(errors) == 2, result.stderr
    assert errors[0].endswith("drawings: is a directory, expected an image file (PNG, JPEG, ...)")
    assert errors[1].endswith("pipe.png: is not a regular file (a FIFO, socket or device), expected an image file")


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--model", "ghost"], "no model named 'ghost'"),
        (["predict", "--model", "ghost", "x.png"], "no model named 'ghost'"),
        (["train", "--epochs", "0"], "epochs must be a whole number from 1"),
        (["train", "--learning-rate", "0"], "learning rate must be above 0"),
        (["train", "--name", "../escape"], "invalid model name '../escape'"),
        (["train", "--data", "/no/such/place"], "/no/such/place: no such file or directory"),
        (["evaluate", "--model", "../../etc/passwd"], "invalid model name"),
        (["litert", "--model", "ghost"], "no model named 'ghost'"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(args, message, tmp_path):
    result = cli(*args, models=tmp_path)
    assert result.returncode == 1
    assert message in error_line(result)


def test_wrong_arguments_print_usage_and_exit_2(tmp_path):
    for args in (["train", "--arch", "resnet"], ["fly"], ["predict"], ["train", "--epochs", "many"]):
        result = cli(*args, models=tmp_path)
        assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["models"]], ids=["help", "train-help", "models"])
def test_help_and_the_model_list_do_not_load_tensorflow(args, trained_store):
    """They answer in ~0.1 s; loading TensorFlow would take ~3 s."""
    code = ("import contextlib, io, sys\nfrom mnist_core.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    main(['--models-dir', {str(trained_store.directory)!r}, *{args!r}])\n"
            "print('small' in out.getvalue() or 'usage:' in out.getvalue(), 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.split() == ["True", "False"], result.stdout + result.stderr


def test_litert_remakes_a_models_copy(trained_store, tmp_path):
    for suffix in (".keras", ".json"):  # a model without its LiteRT copy
        (tmp_path / f"small{suffix}").write_bytes((trained_store.directory / f"small{suffix}").read_bytes())
    result = cli("litert", "--model", "small", models=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"small: LiteRT copy written to {tmp_path / 'small.tflite'}")
    assert (tmp_path / "small.tflite").read_bytes() == (trained_store.directory / "small.tflite").read_bytes()


def test_models_lists_broken_models_with_the_reason(trained_store, tmp_path):
    for suffix in (".keras", ".json"):
        (tmp_path / f"ok{suffix}").write_bytes((trained_store.directory / f"small{suffix}").read_bytes())
    (tmp_path / "ok.json").write_text((tmp_path / "ok.json").read_text().replace('"name": "small"', '"name": "ok"'))
    (tmp_path / "broken.keras").write_bytes(b"garbage")
    result = cli("models", models=tmp_path)
    assert result.returncode == 0
    assert "ok " in result.stdout and "broken" in result.stdout and "BROKEN: broken.json (its card) is missing" \
        in result.stdout


def test_explain_gives_the_models_input_saliency_and_layers(trained_store, pen_drawings, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    paths = [str(p) for p in pen_drawings[:3]]
    result = cli("explain", "--model", "small", "--json", paths[0], str(text), *paths[1:],
                 models=trained_store.directory)
    assert result.returncode == 1 and "notes.png" in error_line(result)  # the bad file named, the others explained
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    predicted = [json.loads(line) for line in cli("predict", "--model", "small", "--json", *paths,
                                                  models=trained_store.directory).stdout.splitlines()]
    assert [line["path"] for line in lines] == paths
    for line, prediction in zip(lines, predicted, strict=True):
        assert line["digit"] == prediction["digit"] and line["runner_up"] != line["digit"]
        image, saliency = np.array(line["image"]), np.array(line["saliency"])
        assert image.shape == saliency.shape == (28, 28) and image.dtype.kind == "i" and image.max() > 200
        assert (saliency >= 0).all() and saliency.max() > 0 and saliency[image == 0].max() == 0
        assert [(layer["type"], layer["output_shape"]) for layer in line["layers"]][:2] == [
            ("Conv2D", [24, 24, 32]), ("MaxPooling2D", [12, 12, 32])]
        assert all(layer["name"] for layer in line["layers"])
        assert line["layers"][-1]["type"] == "Dense" and line["layers"][-1]["output_shape"] == [10]


def test_explain_draws_a_picture_of_each_image(trained_store, pen_drawings, tmp_path):
    one = cli("explain", "--model", "small", "--out", str(tmp_path / "why.png"), str(pen_drawings[0]),
              models=trained_store.directory)
    assert one.returncode == 0, one.stderr
    assert f"picture: {tmp_path / 'why.png'}" in one.stdout
    picture = Image.open(tmp_path / "why.png")
    assert picture.width >= 3 * 28 * 6 and picture.height > 28 * 6  # the input, two heat maps, the feature maps
    many = cli("explain", "--model", "small", "--out", str(tmp_path / "pictures"), *map(str, pen_drawings[:2]),
               models=trained_store.directory)
    assert many.returncode == 0, many.stderr
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == sorted(
        p.with_suffix(".png").name for p in pen_drawings[:2])
    refused = cli("explain", "--model", "small", "--out", str(tmp_path / "x.png"), *map(str, pen_drawings[:2]),
                  models=trained_store.directory)
    assert refused.returncode == 1 and "give a folder" in error_line(refused)


@pytest.mark.slow
def test_train_watches_a_drawing_at_every_epoch(small_mnist_npz, pen_drawings, tmp_path):
    from mnist_core.protocol import parse_line

    result = cli("train", "--arch", "simple", "--epochs", "2", "--data", str(small_mnist_npz), "--name", "watched",
                 "--watch-image", str(pen_drawings[3]), "--progress-jsonl", models=tmp_path)
    assert result.returncode == 0, result.stderr
    events = [parse_line(line) for line in result.stdout.splitlines()]
    epochs = [e.progress for e in events if e is not None and e.kind == "progress" and e.progress.epoch_end]
    assert [p.epoch for p in epochs] == [1, 2]
    for p in epochs:
        assert len(p.watched.probabilities) == 10 and sum(p.watched.probabilities) == pytest.approx(1, abs=1e-3)
        assert p.watched.kernels().shape == (5, 5, 1, 32)  # the simple CNN's first layer
    assert epochs[0].watched.kernels().tolist() != epochs[1].watched.kernels().tolist()  # they learn
    label = int(pen_drawings[3].stem.split("-")[1])
    assert int(np.argmax(epochs[-1].watched.probabilities)) == label


def test_predict_reads_a_number_and_flags_what_is_not_a_digit(handwriting_dir, tmp_path):
    """The shipped model: a year drawn by a held-out writer, and a held-out BHMSDS w, as PNG files."""
    from mnist_core.handwriting import load_bhmsds_symbols, load_pendigits, render_pen_number

    digits = [d for d in load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra") if d.writer == 22]
    year = [next(d for d in digits if d.label == label) for label in (1, 9, 8, 4)]
    number, letter = tmp_path / "year.png", tmp_path / "w.png"
    Image.fromarray(render_pen_number(year, gaps=0.3)).save(number)
    images, _, ids = load_bhmsds_symbols(handwriting_dir / "bhmsds", ("w",))
    Image.fromarray(images[ids >= 1200][0]).save(letter)
    result = cli("predict", "--json", str(number), str(letter))
    assert result.returncode == 0, result.stderr
    year_line, letter_line = (json.loads(line) for line in result.stdout.splitlines())
    assert year_line["number"] == "1984" and year_line["digit"] is None and year_line["not_a_digit"] is False
    assert [d["digit"] for d in year_line["digits"]] == [1, 9, 8, 4]
    assert all(len(d["probabilities"]) == 10 for d in year_line["digits"])
    assert letter_line["not_a_digit"] is True and letter_line["number"] is None and letter_line["digit"] is None
    assert letter_line["guess"]  # the best guess stays available
    as_text = cli("predict", str(number), str(letter))
    first, second = as_text.stdout.splitlines()
    assert first.startswith(f"{number}: 1984 (") and "does not look like a digit" in second


# --- finetune -------------------------------------------------------------------------------


@pytest.fixture
def finetune_store(trained_store, tmp_path):
    """A model store holding a copy of the real model 'small'."""
    folder = tmp_path / "models"
    folder.mkdir()
    for path in trained_store.files("small"):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def class_folder(pen_drawings, root: Path) -> Path:
    """pen_drawings' files (NN-LABEL.png/.jpg, both polarities) in the class-folder layout LABEL/NN.png."""
    for path in pen_drawings:
        label = path.stem.split("-")[1]
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / path.name).write_bytes(path.read_bytes())
    return root


def model_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != ".lock"}


def test_finetune_refuses_bad_input_and_leaves_every_model_as_it_was(finetune_store, pen_drawings,
                                                                     small_mnist_npz, tmp_path):
    good = class_folder(pen_drawings, tmp_path / "good")
    (tmp_path / "empty").mkdir()
    twelve = class_folder(pen_drawings, tmp_path / "twelve")
    (twelve / "12").mkdir()
    not_image = class_folder(pen_drawings, tmp_path / "not-image")
    (not_image / "4" / "x.png").write_text("not an image")
    one = tmp_path / "one" / "7"
    one.mkdir(parents=True)
    (one / "a.png").write_bytes(next(p for p in pen_drawings if p.stem.endswith("-7")).read_bytes())
    cases = [
        (["--drawings", str(tmp_path / "empty")], "no drawings"),
        (["--drawings", str(twelve)], "holds the folder '12'"),
        (["--drawings", str(not_image)], "x.png: not an image file"),
        (["--drawings", str(tmp_path / "one")], "only drawings of digit 7 (1)"),
        (["--drawings", str(good), "--model", "ghost"], "no model named 'ghost'"),
        (["--drawings", str(good), "--name", "my model"], "invalid model name 'my model'"),
    ]
    before = model_files(finetune_store)
    for args, message in cases:
        given = {"--model": "small", "--name": "mine", "--data": str(small_mnist_npz)}
        for option, value in zip(args[::2], args[1::2], strict=True):
            given[option] = value
        result = cli("finetune", *[part for pair in given.items() for part in pair], models=finetune_store)
        assert result.returncode == 1 and message in error_line(result), (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert model_files(finetune_store) == before
    missing = cli("finetune", "--model", "small", "--name", "mine", models=finetune_store)
    assert missing.returncode == 2 and "--drawings" in missing.stderr  # a required option not given: usage


@pytest.mark.slow
def test_finetune_prints_the_held_back_accuracy_and_the_mnist_error(finetune_store, pen_drawings, small_mnist_npz,
                                                                    tmp_path):
    folder = class_folder(pen_drawings, tmp_path / "drawings")
    result = cli("finetune", "--model", "small", "--drawings", str(folder), "--name", "mine", "--json",
                 "--data", str(small_mnist_npz), "--owner", "0123456789abcdef", models=finetune_store)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    card = json.loads((finetune_store / "mine.json").read_text())
    assert figures["name"] == "mine" and figures["base_model"] == "small" and figures["drawings"] == 20
    assert figures["held_back"] == 10 and figures["trained"] == 10  # two of each digit: one held back
    assert figures["held_back_accuracy_before"] == card["adaptation"]["accuracy_before"]
    assert figures["held_back_accuracy_after"] == card["adaptation"]["accuracy_after"] is not None
    assert figures["test_error"] == card["test_error"] and figures["n_test"] == 1000
    assert card["owner"] == "0123456789abcdef" and card["base_model"]["name"] == "small"
    assert "finetune" in card["command"]

    as_text = cli("finetune", "--model", "small", "--drawings", str(folder), "--name", "mine-2",
                  "--data", str(small_mnist_npz), models=finetune_store)
    assert as_text.returncode == 0, as_text.stderr
    line = as_text.stdout.strip()
    assert line.startswith("saved mine-2, fine-tuned from small on 10 of 20 drawings; held-back drawings (10): ")
    assert "% right before, " in line and "MNIST test error" in line and "on 1000 test images (was " in line


@pytest.mark.slow
def test_finetune_reports_as_train_does_and_stops_or_dies_cleanly(finetune_store, pen_drawings, small_mnist_npz,
                                                                  tmp_path):
    import signal

    from mnist_core.protocol import EXIT_CANCELLED, parse_line

    folder = class_folder(pen_drawings, tmp_path / "drawings")
    command = [sys.executable, "-m", "mnist_core", "--models-dir", str(finetune_store), "finetune", "--model",
               "small", "--drawings", str(folder), "--name", "mine", "--data", str(small_mnist_npz),
               "--progress-jsonl", "--niceness", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    events = [e for e in map(parse_line, done.stdout.splitlines()) if e is not None]  # then the "saved" text
    assert events[-1].kind == "saved" and done.stdout.splitlines()[-1].startswith("saved mine, fine-tuned")
    assert {e.kind for e in events[:-1]} == {"progress"} and events[-2].progress.epoch_end
    assert events[-1].card.adaptation.count == 20 and events[-1].card.name == "mine"

    before = model_files(finetune_store)
    for sig, status in ((signal.SIGTERM, EXIT_CANCELLED), (signal.SIGKILL, -signal.SIGKILL)):
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                 cwd=ROOT)
        first = child.stdout.readline()  # training has begun
        assert parse_line(first).kind == "progress", first + child.stderr.read()
        child.send_signal(sig)
        child.communicate(timeout=120)
        assert child.returncode == status
        assert model_files(finetune_store) == before  # "mine" is still the one saved above, nothing else added
