"""Fine-tuning a saved model on someone's drawings (mnist_core.adapt), on real handwriting of held-out writers."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_core.adapt import finetune, hold_back, read_drawings
from mnist_core.card import ModelCard
from mnist_core.data import DataError, load_mnist
from mnist_core.preprocessing import ImageError, read_image, to_mnist
from mnist_core.store import ModelStore, ModelStoreError

MODELS = Path(__file__).resolve().parent.parent / "models"
WRITER = 16  # a pendigits writer the shipped default never trained on


@pytest.fixture(scope="module")
def writer_drawings(handwriting_dir):
    """Every digit of one held-out pendigits writer, drawn on a canvas: (RGBA images, labels)."""
    from mnist_core.handwriting import load_pendigits, random_canvas_drawing

    digits = [d for d in load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra") if d.writer == WRITER]
    rng = np.random.default_rng(0)
    return [random_canvas_drawing(d, rng) for d in digits], np.array([d.label for d in digits])


def class_folder(root: Path, images, labels, suffix=".png") -> Path:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).convert("RGB" if suffix == ".jpg" else "RGBA").save(root / str(label) / f"{i}{suffix}")
    return root


def store_files(store: ModelStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.directory.iterdir()) if p.is_file() and p.name != ".lock"}


def copy_store(source: ModelStore, names, destination: Path) -> ModelStore:
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        for path in source.files(name):
            if path.exists():
                shutil.copy(path, destination / path.name)
    return ModelStore(destination)


def split(labels, per_digit: int, seed: int = 0):
    """Indices of the first ``per_digit`` drawings of each digit (in a seeded order), and of all the others."""
    rng = np.random.default_rng(seed)
    order = [rng.permutation(np.flatnonzero(labels == d)) for d in range(10)]
    return np.concatenate([o[:per_digit] for o in order]), np.concatenate([o[per_digit:] for o in order])


def test_hold_back_is_stratified_and_says_none_when_too_few():
    labels = np.array([0] * 1 + [1] * 2 + [2] * 3 + [3] * 8 + [4] * 13)
    trained, held = hold_back(labels)
    assert np.bincount(labels[held], minlength=10).tolist() == [0, 1, 1, 2, 3, 0, 0, 0, 0, 0]
    assert sorted([*trained, *held]) == list(range(len(labels)))
    assert np.array_equal(hold_back(labels)[1], held)  # the same seed, the same drawings
    assert len(hold_back(np.arange(10))[1]) == 0  # one of each digit: nothing can be held back


def test_a_folder_of_any_size_and_polarity_is_read_as_the_page_reads_a_picture(writer_drawings, tmp_path):
    images, labels = writer_drawings
    chosen, _ = split(labels, 2)
    inverted = [np.concatenate([255 - im[:, :, :3], im[:, :, 3:]], axis=2) for im in np.array(images)[chosen[::2]]]
    folder = class_folder(tmp_path / "d", inverted, labels[chosen[::2]], ".jpg")  # dark on light, JPEG
    class_folder(folder, [images[i] for i in chosen[1::2]], labels[chosen[1::2]])
    read = read_drawings(folder)
    assert read.counts == [2] * 10 and read.images.shape == (20, 28, 28)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert np.array_equal(read.images, np.stack([to_mnist(read_image(p)).image for p in files]))
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.parent.name}/{p.name}\n" for p in files)
    assert read.sha256 == hashlib.sha256(sums.encode()).hexdigest()  # what `sha256sum */*` prints, hashed


def test_bad_drawings_are_refused_with_what_was_found(writer_drawings, tmp_path):
    images, labels = writer_drawings
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no drawings"):
        read_drawings(tmp_path / "empty")
    twelve = class_folder(tmp_path / "twelve", images[:4], labels[:4])
    (twelve / "12").mkdir()
    with pytest.raises(DataError, match="holds the folder '12'; a drawings folder holds only one folder per digit"):
        read_drawings(twelve)
    text = class_folder(tmp_path / "text", images[:4], labels[:4])
    (text / "3" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not a PNG or JPEG"):
        read_drawings(text)
    fake = class_folder(tmp_path / "fake", images[:4], labels[:4])
    (fake / "3" / "fake.png").write_text("not an image")
    with pytest.raises(ImageError, match="fake.png: not an image file"):
        read_drawings(fake)
    blank = class_folder(tmp_path / "blank", images[:4], labels[:4])
    Image.new("RGB", (280, 280)).save(blank / "5" / "blank.png")
    with pytest.raises(DataError, match="blank.png: nothing is drawn"):
        read_drawings(blank)
    sevens = np.flatnonzero(labels == 7)[:3]
    one = class_folder(tmp_path / "one", [images[i] for i in sevens], labels[sevens])
    with pytest.raises(DataError, match="only drawings of digit 7 \\(3\\); a fine-tune needs drawings of at least two"):
        read_drawings(one)
    with pytest.raises(DataError, match="no such file or folder"):
        read_drawings(tmp_path / "missing")
    (tmp_path / "a.txt").write_text("1,2")
    with pytest.raises(DataError, match="not a folder of digit folders 0-9 nor a Kaggle-format .csv"):
        read_drawings(tmp_path / "a.txt")


def test_bad_base_or_name_writes_nothing(trained_store, writer_drawings, small_mnist_npz, tmp_path):
    images, labels = writer_drawings
    folder = class_folder(tmp_path / "d", images[:20], labels[:20])
    store = copy_store(trained_store, ["small"], tmp_path / "models")
    before = store_files(store)
    with pytest.raises(ModelStoreError, match="no model named 'nope'"):
        finetune("nope", folder, "mine", store, mnist=small_mnist_npz)
    with pytest.raises(ValueError, match="invalid model name 'my model'"):
        finetune("small", folder, "my model", store, mnist=small_mnist_npz)
    assert store_files(store) == before


@pytest.mark.slow
def test_a_finetune_on_a_writers_drawings_reads_their_other_drawings_better(
        trained_store, writer_drawings, small_mnist_npz, tmp_path):
    images, labels = writer_drawings
    given, others = split(labels, 8)  # 80 drawings: 60 to train on, 20 held back
    folder = class_folder(tmp_path / "drawings", [images[i] for i in given], labels[given])
    store = copy_store(trained_store, ["small"], tmp_path / "models")
    base, base_card = store.load("small")
    mnist = load_mnist(small_mnist_npz)
    reports = []
    card = finetune("small", folder, "small-mine", store, mnist=mnist, progress=reports.append,
                    owner="0123456789abcdef", command="pytest")

    a = card.adaptation
    assert (a.count, a.trained, a.held_back, a.counts) == (80, 60, 20, [8] * 10)
    assert a.drawings == str(folder) and a.sha256 == read_drawings(folder).sha256 and a.replay == 4000
    assert a.accuracy_after >= a.accuracy_before
    assert card.base_model.name == "small" and card.base_model.keras_sha256 == base_card.keras_sha256
    assert card.training.base_model == "small" and card.owner == "0123456789abcdef"
    assert card.test_set.n_test == 1000 and card.test_error is not None
    assert card.data.extra[0].name == "drawings" and card.data.n_train == 4000 + card.data.extra[0].count
    assert reports and reports[-1].epoch_end
    saved = ModelCard.from_dict(json.loads(store.files("small-mine").card.read_text()))
    assert saved == card  # the adaptation is on the card as saved, and reads back

    # Measured on every other drawing of the writer: fewer wrong than the base model got.
    from mnist_core.evaluation import predict_probabilities

    test = np.stack([to_mnist(np.asarray(images[i])).image for i in others])
    adapted, _ = store.load("small-mine")
    wrong_before = int(np.sum(predict_probabilities(base, test).argmax(1) != labels[others]))
    wrong_after = int(np.sum(predict_probabilities(adapted, test).argmax(1) != labels[others]))
    assert wrong_after < wrong_before, (wrong_before, wrong_after)
    # Its MNIST test error, as measured on the card, is what the saved model gets.
    assert card.test_error == pytest.approx(
        100 * np.mean(predict_probabilities(adapted, mnist.x_test).argmax(1) != mnist.y_test))


@pytest.mark.slow
def test_a_stopped_finetune_saves_nothing_and_changes_no_model(trained_store, writer_drawings, small_mnist_npz,
                                                               tmp_path):
    from mnist_core.training import TrainingCancelled

    images, labels = writer_drawings
    folder = class_folder(tmp_path / "d", images[:30], labels[:30])
    store = copy_store(trained_store, ["small"], tmp_path / "models")
    model, card = store.load("small")
    card.name = "mine"
    store.save(model, card)  # a model the stopped fine-tune would have replaced
    before = store_files(store)
    stop = threading.Event()

    def stop_after_a_few_batches(report):
        if report.batch >= 3:
            stop.set()

    with pytest.raises(TrainingCancelled):
        finetune("small", folder, "mine", store, mnist=small_mnist_npz, progress=stop_after_a_few_batches, stop=stop)
    assert store_files(store) == before and store.inspect("mine").ok


@pytest.mark.slow
def test_the_shipped_default_an_ensemble_fine_tunes(writer_drawings, small_mnist_npz, tmp_path):
    images, labels = writer_drawings
    given, _ = split(labels, 3)
    rgba = [images[i] for i in given]
    folder = tmp_path / "drawings"
    for i, (image, label) in enumerate(zip(rgba, labels[given], strict=True)):  # the page's canvas PNGs
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        (folder / str(label) / f"{i}.png").write_bytes(buffer.getvalue())
    store = copy_store(ModelStore(MODELS), ["default"], tmp_path / "models")
    card = finetune("default", folder, "default-mine", store, mnist=small_mnist_npz)
    assert card.architecture == "best x2" and card.training.members == 2
    assert card.adaptation.held_back == 10 and card.adaptation.accuracy_after is not None
    model, _ = store.load("default-mine")
    assert model.count_params() == card.parameters
