"""page.display: the page's pictures, charts and texts, and its check of uploaded CSVs (real MNIST)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from test_store import small_filesystem, unwritable

from mnist_core.card import ModelCard
from mnist_core.data import DataError
from mnist_core.progress import TrainingProgress
from mnist_core.settings import TrainingSettings
from mnist_core.store import ModelStore, StoredModel
from page import display

ROOT = Path(__file__).resolve().parent.parent
PIXEL_HEADER = ",".join(["label", *(f"pixel{i}" for i in range(784))])


def kaggle_csv(images: np.ndarray, labels: np.ndarray) -> bytes:
    """A Kaggle Digit Recognizer train.csv of these images, as bytes."""
    rows = [",".join(map(str, [int(y), *x.ravel().tolist()])) for x, y in zip(images, labels, strict=True)]
    return ("\n".join([PIXEL_HEADER, *rows]) + "\n").encode()


def card(**changes) -> ModelCard:
    values = dict(
        name="m", architecture="simple", parameters=592074,
        training={"epochs": 3, "batch_size": 128, "learning_rate": 0.001, "augment": True, "members": 1},
        data={"source": "/data/mnist", "sha256": "ab" * 32, "n_train": 54000, "n_validation": 6000},
        test_set={"source": "/data/mnist", "sha256": "ab" * 32, "n_test": 10000},
        epochs_run=3, validation_error=1.25, test_error=1.07, training_seconds=125.0,
        command="python -m mnist_core train --arch simple",
    )
    values.update(changes)
    return ModelCard.from_dict(values)


def progress(epoch: int, batch: int, epoch_end: bool = False, **changes) -> TrainingProgress:
    values = dict(member=1, members=1, epoch=epoch, epochs=2, batch=batch, batches=10, loss=0.5, accuracy=0.9,
                  val_loss=0.4 if epoch_end else None, val_accuracy=0.92 if epoch_end else None,
                  images_per_second=1000.0, seconds_elapsed=3.0, seconds_left=65.0, epoch_end=epoch_end)
    values.update(changes)
    return TrainingProgress(**values)


# --- pictures -------------------------------------------------------------------------------


def test_enlarge_shows_every_pixel_as_a_block_with_a_faint_grid(mnist):
    digit = mnist.x_test[0]
    big = display.enlarge(digit, scale=10)
    assert big.shape == (280, 280, 3) and big.dtype == np.uint8
    # inside each block the pixel's value, unchanged
    assert np.array_equal(big[5::10, 5::10, 0], digit)
    # grid lines are close to the pixel they cross: lighter on background, darker on ink
    assert big[0, 5, 0] == 45 and digit[0, 0] == 0
    row, col = np.argwhere(digit == 255)[0]
    assert big[row * 10, col * 10 + 5, 0] == 255 - 45


def test_enlarge_without_grid_is_a_plain_nearest_neighbour_upscale(mnist):
    digit = mnist.x_test[1]
    big = display.enlarge(digit, scale=3, grid=False)
    assert np.array_equal(big[..., 0], np.kron(digit, np.ones((3, 3), np.uint8)))


def test_thumbnail_fits_any_step_into_a_square_keeping_the_aspect_ratio():
    tall = np.full((200, 100), 255, np.uint8)
    tile = display.thumbnail(tall, 56)
    assert tile.shape == (56, 56)
    assert tile[:, 14:42].min() == 255 and tile[:, :14].max() == 0 and tile[:, 42:].max() == 0
    small = np.eye(20, dtype=np.uint8) * 255
    assert np.array_equal(display.thumbnail(small, 60), np.kron(small, np.ones((3, 3), np.uint8)))  # crisp blocks


# --- charts ---------------------------------------------------------------------------------


def test_probability_chart_marks_the_top_class():
    p = np.array([0.01, 0.02, 0.7, 0.2, 0.07, 0, 0, 0, 0, 0])
    spec = display.probability_chart(p)
    values = spec["data"]["values"]
    assert [v["digit"] for v in values] == [str(d) for d in range(10)]
    assert [v["probability"] for v in values] == pytest.approx(p)
    assert [v["digit"] for v in values if v["top"]] == ["2"]
    assert not any(v["top"] for v in display.probability_chart(np.zeros(10))["data"]["values"])  # nothing drawn
    assert spec["mark"]["type"] == "bar"
    json.dumps(spec)  # plain JSON, as st.vega_lite_chart sends it


def test_runner_up():
    assert display.runner_up([0.1, 0.6, 0.3, 0, 0, 0, 0, 0, 0, 0]) == (2, pytest.approx(0.3))


def test_history_frame_in_long_form():
    history = {"loss": [0.5, 0.3], "accuracy": [0.8, 0.9], "val_loss": [0.4, 0.35], "val_accuracy": [0.85, 0.88],
               "learning_rate": [0.001, 0.001]}
    frame = display.history_frame(history)
    assert len(frame) == 8
    assert set(frame["metric"]) == {"loss", "accuracy"} and set(frame["split"]) == {"training", "validation"}
    row = frame[(frame.metric == "accuracy") & (frame.split == "validation") & (frame.epoch == 2)]
    assert row["value"].item() == pytest.approx(0.88)
    for metric in ("loss", "accuracy"):
        assert display.curve_chart(frame, metric).to_dict()["mark"]["type"] == "line"


def test_curves_of_a_model_without_validation_have_no_validation_legend(trained_store):
    """The shipped default trained on everything: its chart must not promise a validation curve."""
    _, card = ModelStore().load("default")
    assert card.training.validation_split == 0
    scale = display.curve_chart(display.history_frame(card.history), "loss").to_dict()["encoding"]["color"]["scale"]
    assert scale == {"domain": ["training"], "range": [display.MUTED]}
    _, with_validation = trained_store.load("small")  # trained with a validation split
    chart = display.curve_chart(display.history_frame(with_validation.history), "accuracy").to_dict()
    assert chart["encoding"]["color"]["scale"]["domain"] == ["training", "validation"]
    assert chart["encoding"]["color"]["scale"]["range"] == [display.MUTED, display.HIGHLIGHT]


def test_live_frame_places_batches_between_epochs_and_adds_validation_at_epoch_ends():
    frame = display.live_frame([progress(1, 5), progress(1, 10, epoch_end=True), progress(2, 5)])
    training_loss = frame[(frame.metric == "loss") & (frame.split == "training")]
    assert list(training_loss["epoch"]) == [0.5, 1.0, 1.5]
    validation = frame[frame.split == "validation"]
    assert list(validation["epoch"]) == [1.0, 1.0] and set(validation["metric"]) == {"loss", "accuracy"}


def test_confusion_frame_separates_mistakes_from_correct_answers():
    confusion = np.diag([50] * 10)
    confusion[3, 5] = 7
    confusion[8, 1] = 2
    frame = display.confusion_frame(confusion)
    assert len(frame) == 100 and frame["count"].sum() == 509
    assert frame["errors"].sum() == 9
    cell = frame[(frame.true == "3") & (frame.predicted == "5")]
    assert cell["errors"].item() == 7 and bool(cell["dark"].item())
    assert not frame[(frame.true == "8") & (frame.predicted == "1")]["dark"].item()
    spec = display.confusion_chart(confusion.tolist()).to_dict()
    assert len(spec["layer"]) == 3


def test_per_class_chart_has_ten_bars():
    spec = display.per_class_chart([1.0] * 10).to_dict()
    assert len(next(iter(spec["datasets"].values()))) == 10


# --- texts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (42.4, "42 s"), (185, "3 min 05 s"), (3725, "1 h 02 min")])
def test_format_duration(seconds, text):
    assert display.format_duration(seconds) == text


def test_progress_text():
    assert display.progress_text(progress(2, 7)) == "Epoch 2/2 · batch 7/10 · 1 min 05 s left"
    assert display.progress_text(progress(1, 3, member=2, members=3)).startswith("Network 2/3 · Epoch 1/2")


def test_model_label_shows_the_measured_test_error_or_that_it_is_broken():
    assert display.model_label(StoredModel("m", card())) == "m · 1.07% test error"
    assert display.model_label(StoredModel("m", card(test_error=None))) == "m · test error not measured"
    assert display.model_label(StoredModel("x", None, "x.keras is missing")) == "x · broken"


def test_settings_beyond_form_names_what_the_form_does_not_show():
    assert display.settings_beyond_form(TrainingSettings()) == ""
    quick = TrainingSettings("simple", epochs=3, batch_size=64, learning_rate=2e-3, validation_split=0,
                             schedule="cosine")
    assert display.settings_beyond_form(quick) == (
        "learning rate 0.002, cosine learning-rate schedule"
    )
    assert display.settings_beyond_form(TrainingSettings(members=2, validation_split=0.2)) == (
        "2 networks trained and averaged"  # the validation split is in the form
    )


def test_card_facts_describe_the_model():
    facts = display.card_facts(card())
    assert facts["Test error"] == "1.07% on mnist (10,000 images)"
    assert facts["Parameters"] == "592,074"
    assert "augmentation on" in facts["Training"]
    assert facts["Data checksum"] == "sha256 " + "ab" * 32
    assert facts["Training time"] == "2 min 05 s"


def test_an_adaptation_is_summed_up_with_what_it_measured_and_nothing_it_did_not():
    adaptation = {"drawings": "/d/OWNER/images", "sha256": "cd" * 32, "count": 30, "trained": 20, "held_back": 10,
                  "accuracy_before": 70.0, "accuracy_after": 90.0, "replay": 4000, "counts": [3] * 10}
    base = {"name": "default", "keras_sha256": "ef" * 32, "architecture": "best", "test_error": 0.29}
    summary = display.adaptation_summary(card(name="default-yours-a1b2c3", adaptation=adaptation, base_model=base,
                                              test_error=0.31))
    assert summary == ("default-yours-a1b2c3 is default adapted to 20 of your 30 drawings: on the 10 of your drawings "
                       "held back from it, default read 70% right and default-yours-a1b2c3 reads 90%; MNIST test "
                       "error 0.29% → 0.31% (10,000 test digits).")
    too_few = display.adaptation_summary(card(adaptation={**adaptation, "held_back": 0, "accuracy_before": None,
                                                          "accuracy_after": None}, base_model=base))
    assert "too few drawings of each digit to hold any back" in too_few and "% right" not in too_few


def test_test_set_name_understands_keras_download_sources():
    keras_card = card(test_set={"source": "keras.datasets.mnist (/root/.keras/datasets/mnist.npz)", "n_test": 10000})
    assert display.test_set_name(keras_card) == "keras.datasets.mnist (10,000 images)"


def test_escape_markdown_keeps_file_names_and_paths_as_they_are():
    assert display.escape_markdown("my_train_data.csv: row 4") == "my\\_train\\_data.csv\\: row 4"
    assert display.escape_markdown("*[x](y)* `z` $a$ :red[b]") == "\\*\\[x\\](y)\\* \\`z\\` \\$a\\$ \\:red\\[b\\]"
    assert display.escape_markdown("plain text, 1.07%") == "plain text, 1.07%"


def test_capitalised_capitalises_only_the_first_letter():
    assert display.capitalised("a training is running: 'My-Model'") == "A training is running: 'My-Model'"


def test_a_symlink_loop_in_the_store_neither_breaks_the_fingerprint_nor_the_listing(tmp_path):
    (tmp_path / "loop.keras").symlink_to(tmp_path / "loop.keras")
    (tmp_path / "gone.keras").symlink_to(tmp_path / "nowhere")
    assert [name for name, *_ in display.folder_fingerprint(tmp_path)] == ["loop.keras"]  # the dangling one is no file
    listed = {entry.name: entry for entry in ModelStore(tmp_path).list()}
    assert not listed["loop"].ok and not listed["gone"].ok and "loop.keras" in listed["loop"].problem


def test_folder_fingerprint_changes_when_a_file_does(tmp_path):
    assert display.folder_fingerprint(tmp_path / "missing") == ()
    (tmp_path / "a.json").write_text("{}")
    before = display.folder_fingerprint(tmp_path)
    (tmp_path / "a.json").write_text('{"x": 1}')
    assert display.folder_fingerprint(tmp_path) != before


# --- uploads --------------------------------------------------------------------------------


def test_check_upload_keeps_a_valid_csv_and_loads_it(mnist, tmp_path):
    data = kaggle_csv(mnist.x_train[:60], mnist.y_train[:60])
    path, loaded = display.keep_upload("train.csv", data, tmp_path / "uploads")
    assert path.parent == tmp_path / "uploads" and path.read_bytes() == data
    assert len(loaded.x_train) == 50 and len(loaded.x_test) == 10
    assert np.array_equal(loaded.x_train, mnist.x_train[:50])
    again, _ = display.keep_upload("copy.csv", data, tmp_path / "uploads")
    assert again == path  # stored by content: the same file once


def test_check_upload_names_the_uploaded_file_and_the_problem(mnist, tmp_path):
    labels = mnist.y_train[:30].copy()
    data = kaggle_csv(mnist.x_train[:30], labels).replace(b"\n" + str(labels[2]).encode() + b",", b"\n12,", 1)
    with pytest.raises(DataError, match=r"^my digits\.csv: row 4, column 'label': 12 is not a digit 0-9$"):
        display.keep_upload("my digits.csv", data, tmp_path)
    assert list(tmp_path.iterdir()) == []  # a bad file is not kept


def test_check_upload_reports_a_wrong_header(mnist, tmp_path):
    data = kaggle_csv(mnist.x_train[:5], mnist.y_train[:5]).replace(b",pixel783", b"", 1)
    with pytest.raises(DataError, match=r"^bad\.csv: header has 784 columns, expected 785"):
        display.keep_upload("bad.csv", data, tmp_path)


def test_check_upload_refuses_large_or_non_csv_files_before_reading_them(tmp_path):
    with pytest.raises(DataError, match=r"big\.csv: 2 MB is over the 1 MB upload limit"):
        display.keep_upload("big.csv", b"x" * (2 * 1024 * 1024), tmp_path, limit_mb=1)
    with pytest.raises(DataError, match=r"digits\.txt: not a \.csv file"):
        display.keep_upload("digits.txt", b"label\n", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_upload_on_a_full_disk_leaves_nothing_and_says_so(mnist, tmp_path):
    """On a real tmpfs smaller than the upload: before, a truncated file stayed and a later upload used it."""
    data = kaggle_csv(mnist.x_train[:400], mnist.y_train[:400])  # ~700 KB
    with small_filesystem(tmp_path / "disk", 256 * 1024) as disk:
        folder = disk / "uploads"
        for _ in range(2):  # the second time finds nothing half-written to take for the file
            with pytest.raises(DataError, match=rf"^train\.csv: could not store the upload in {folder}: "
                                                r"No space left on device$"):
                display.keep_upload("train.csv", data, folder)
            assert list(folder.iterdir()) == []
        small = kaggle_csv(mnist.x_train[:60], mnist.y_train[:60])
        path, loaded = display.keep_upload("small.csv", small, folder)  # what fits is kept, whole
        assert path.read_bytes() == small and len(loaded.x_train) + len(loaded.x_test) == 60
        assert [p.name for p in folder.iterdir()] == [path.name]


def test_an_upload_to_a_read_only_folder_leaves_nothing_and_says_so(mnist, tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    refused = rf"^train\.csv: could not store the upload in {folder}: (Permission denied|Operation not permitted)$"
    with unwritable(folder), pytest.raises(DataError, match=refused):
        display.keep_upload("train.csv", kaggle_csv(mnist.x_train[:30], mnist.y_train[:30]), folder)
    assert list(folder.iterdir()) == []


def test_two_users_uploading_the_same_file_at_once_each_read_it_whole(mnist, tmp_path):
    """Each writes and checks a file of its own, then renames it over the other's identical one."""
    data = kaggle_csv(mnist.x_train[:2400], mnist.y_train[:2400])  # ~4 MB: a write takes a while
    start, results, errors = threading.Barrier(4), [], []

    def upload():
        start.wait()
        try:
            results.append(display.keep_upload("train.csv", data, tmp_path))
        except DataError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 4
    assert {path for path, _ in results} == {tmp_path / f"upload-{hashlib.sha256(data).hexdigest()[:16]}.csv"}
    assert all(len(loaded.x_train) == 2000 for _, loaded in results)
    path = results[0][0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name] and path.read_bytes() == data
    # Three trainings are refused (busy, too small): the file stays while another user still holds it ...
    assert [display.release_upload(path, started=False) for _ in range(3)] == [False, False, False]
    assert path.exists()
    assert not display.release_upload(path, started=False, in_use=[str(path)])  # ... or a training uses it
    display.keep_upload("train.csv", data, tmp_path)
    assert display.release_upload(path, started=False) and list(tmp_path.iterdir()) == []  # then it goes


def test_uploads_are_pruned_oldest_first_sparing_what_is_in_use(mnist, tmp_path):
    uploads = []
    for i in range(7):  # seven distinct real CSVs, oldest first
        path, _ = display.keep_upload(f"{i}.csv", kaggle_csv(mnist.x_train[i:i + 12], mnist.y_train[i:i + 12]),
                                      tmp_path)
        display.release_upload(path, started=True)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        uploads.append(path)
    held, _ = display.keep_upload("held.csv", kaggle_csv(mnist.x_train[:13], mnist.y_train[:13]), tmp_path)
    os.utime(held, (1, 1))  # the oldest of all, but its user has not started (or been refused) yet
    stale = tmp_path / f"{display.UPLOAD_TEMP_PREFIX}killed.csv"
    stale.write_bytes(b"half an upload")
    os.utime(stale, (1, 1))
    writing = tmp_path / f"{display.UPLOAD_TEMP_PREFIX}writing.csv"  # another upload being written now
    writing.write_bytes(b"half an upload")
    running, tested = uploads[0], uploads[1]  # a training is using one; a model's card names another
    removed = display.prune_uploads(tmp_path, in_use=[str(running)], referenced=[str(tested)], kept=6)
    assert removed == uploads[2:4]  # 8 uploads, 6 kept: the oldest two free ones
    assert sorted(tmp_path.iterdir()) == sorted([held, writing, running, tested, *uploads[4:]])
    assert display.prune_uploads(tmp_path, in_use=[str(running)], referenced=[str(tested)], kept_mb=0) == [
        *uploads[4:], tested]  # over the size cap: a card's test set goes last, but it goes
    assert sorted(tmp_path.iterdir()) == sorted([held, writing, running])
    display.release_upload(held, started=False)


def test_the_subtitle_and_the_card_facts_say_what_the_shipped_model_was_trained_on():
    card = ModelCard.from_dict(json.loads((ROOT / "models" / "default.json").read_text()))
    assert display.subtitle(card) == ("Model “default” (2 “best” CNNs averaged, trained on MNIST + usps, optdigits, "
                                      "cvl, bhmsds, pendigits, slashed zeros) reads your handwriting as you draw.")
    assert "learning rate 0.00015 (cosine decay)" in display.card_facts(card)["Training"]
    assert display.subtitle(None).startswith("Draw a digit")
