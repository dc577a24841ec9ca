"""The page's logic, run by Streamlit's AppTest against model stores holding real trained models.

AppTest runs ``app.py`` in this process without a browser: it cannot draw on the
canvas or upload a file (tests/test_browser.py does both in Chromium), so here the
canvas is blank and uploads are checked through the function the page calls.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_preprocessing import png_bytes

from mnist_core.data import DataError
from mnist_core.settings import MAX_EPOCHS, PRESETS
from page import display

APP = Path(__file__).resolve().parent.parent / "app.py"
TIMEOUT = 120  # the first run imports TensorFlow and loads the model


@pytest.fixture(scope="session")
def app_store(trained_store, tmp_path_factory) -> Path:
    """A model store folder holding ``default``: the real model of conftest's ``trained_store``."""
    directory = tmp_path_factory.mktemp("app-models")
    copy_model(trained_store.directory, "small", directory, "default")
    return directory


def copy_model(source: Path, name: str, target: Path, new_name: str) -> None:
    """Copy model ``name`` of store ``source`` into store ``target`` as ``new_name``."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / f"{name}.keras", target / f"{new_name}.keras")
    card = json.loads((source / f"{name}.json").read_text())
    card["name"] = new_name
    (target / f"{new_name}.json").write_text(json.dumps(card))


def run_app(models_dir: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("MNIST_DRAWINGS_DIR", str(models_dir.parent / f"{models_dir.name}-drawings"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def card_of(store: Path, name: str) -> dict:
    return json.loads((store / f"{name}.json").read_text())


# --- with a model --------------------------------------------------------------------------------


def test_page_renders_with_the_default_model(app_store, monkeypatch):
    at = run_app(app_store, monkeypatch)
    assert "Handwritten digit recogniser" in at.title[0].value
    assert [t.label for t in at.tabs] == [":material/edit: Draw", ":material/insights: Look inside",
                                          ":material/photo_library: My drawings"]
    selector = at.sidebar.selectbox(key="model")
    assert selector.value == "default"
    # Look inside: the card's figures, curves, confusion matrix and the card itself
    card = card_of(app_store, "default")
    inside = at.tabs[1]
    assert inside.subheader[0].value == "Model “default”"
    metrics = {m.label: m.value for m in inside.metric}
    assert metrics["Test error"] == f"{card['test_error']:.2f}%"
    assert metrics["Architecture"] == "simple" and metrics["Parameters"] == f"{card['parameters']:,}"
    model_card = " ".join(texts(inside.markdown))
    assert card["data"]["sha256"] in model_card and "1,000 images" in model_card
    assert "learning rate 0.001 (constant)" in model_card  # the schedule the card records
    # Under the title: what reads the drawings, as its card says (this one: the simple CNN, on a slice of MNIST)
    assert at.caption[0].value == display.escape_markdown(
        "Model “default” (a “simple” network, trained on MNIST) reads your handwriting as you draw.")
    assert inside.code[0].value == card["command"] == "pytest fixture"
    assert not inside.warning  # the test set is reachable: the gallery is shown
    wrong = len(card["misclassified"])
    which = "all" if wrong <= display.GALLERY_SIZE else f"the first {display.GALLERY_SIZE}"
    assert f"{wrong:,} of 1,000 test digits are wrong; {which} shown as *true → predicted*." in texts(inside.caption)


def test_blank_canvas_shows_the_hint_and_no_prediction(app_store, monkeypatch):
    at = run_app(app_store, monkeypatch)
    draw = at.tabs[0]
    assert any("Draw a digit" in i for i in texts(draw.info))
    assert "Prediction" not in [m.label for m in draw.metric]


def test_the_active_model_is_in_the_pages_link_and_survives_a_reload(app_store, tmp_path, monkeypatch):
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "default")
    copy_model(app_store, "default", store, "other")
    at = run_app(store, monkeypatch)
    assert at.query_params["model"] in ("default", ["default"])  # AppTest gives a value or a list
    at.sidebar.selectbox(key="model").set_value("other").run()
    assert at.query_params["model"] in ("other", ["other"])
    reloaded = AppTest.from_file(str(APP), default_timeout=TIMEOUT)  # a new session opened at that link
    reloaded.query_params["model"] = "other"
    reloaded.run()
    assert reloaded.sidebar.selectbox(key="model").value == "other"
    nonsense = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    nonsense.query_params["model"] = "../etc/passwd"
    nonsense.run()
    assert nonsense.sidebar.selectbox(key="model").value == "default" and not nonsense.exception


def test_model_selector_lists_every_model_with_its_test_error(app_store, tmp_path, monkeypatch):
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "default")
    copy_model(app_store, "default", store, "my-cnn")
    at = run_app(store, monkeypatch)
    selector = at.sidebar.selectbox(key="model")
    assert selector.options == [
        f"default · {card_of(store, 'default')['test_error']:.2f}% test error · shipped/command line",
        f"my-cnn · {card_of(store, 'my-cnn')['test_error']:.2f}% test error · shipped/command line",
    ]
    selector.set_value("my-cnn").run()
    assert not at.exception
    assert at.tabs[1].subheader[0].value == "Model “my-cnn”"  # nothing in the name to escape


def test_the_list_says_whose_each_model_is_and_a_user_deletes_their_own_after_confirming(app_store, tmp_path,
                                                                                          monkeypatch):
    from mnist_core import identity

    key = identity.new_key()
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "default")
    for name, owner in (("mine", identity.owner_of(key)), ("theirs", identity.owner_of(identity.new_key()))):
        copy_model(app_store, "default", store, name)
        card = card_of(store, name)
        (store / f"{name}.json").write_text(json.dumps({**card, "owner": owner}))
    monkeypatch.setenv("MNIST_MODELS_DIR", str(store))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["me"] = key  # this user's personal link
    at.run()
    assert not at.exception, at.exception
    assert [o.rsplit(" · ", 1)[1] for o in at.sidebar.selectbox(key="model").options] == [
        "shipped/command line", "yours", "another user's"]
    assert [e.label for e in at.sidebar.expander] == ["Your models (1)"]  # only hers can be deleted
    at.sidebar.selectbox(key="model").set_value("mine").run()
    next(b for b in at.sidebar.button if b.label == "Delete").click().run()
    assert any("Delete `mine` for good?" in w for w in texts(at.sidebar.warning))
    assert (store / "mine.keras").exists()  # not before it is confirmed
    next(b for b in at.sidebar.button if b.label == "Delete for good").click().run()
    assert not at.exception, at.exception
    assert not (store / "mine.keras").exists() and not (store / "mine.json").exists()
    assert at.sidebar.selectbox(key="model").value == "default"  # the deleted model was active: default again
    assert [o.split(" · ")[0] for o in at.sidebar.selectbox(key="model").options] == ["default", "theirs"]
    assert not at.sidebar.expander and (store / "theirs.keras").exists()


def test_broken_models_are_listed_with_the_reason_and_a_good_one_is_used(app_store, tmp_path, monkeypatch):
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "default")
    copy_model(app_store, "default", store, "damaged")
    with open(store / "damaged.keras", "r+b") as f:  # one flipped byte: the checksum no longer matches
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    (store / "orphan.json").write_text((store / "default.json").read_text())  # a card without its model
    at = run_app(store, monkeypatch)
    warnings = " ".join(texts(at.sidebar.warning))
    assert "`damaged` is broken" in warnings and "does not match its card (checksum differs)" in warnings
    assert "`orphan` is broken" in warnings and "orphan.keras is missing" in warnings
    assert at.sidebar.selectbox(key="model").value == "default"
    assert at.tabs[1].subheader[0].value == "Model “default”"


def test_a_default_model_that_cannot_be_loaded_falls_back_to_a_good_one(app_store, tmp_path, monkeypatch):
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "good")
    (store / "default.keras").write_bytes(b"not a keras file at all")
    card = card_of(app_store, "default")
    card["keras_sha256"] = ""  # an old card without a checksum: only loading can tell the file is bad
    (store / "default.json").write_text(json.dumps(card))
    at = run_app(store, monkeypatch)
    assert at.sidebar.selectbox(key="model").value == "good"
    warnings = " ".join(texts(at.sidebar.warning))
    assert "`default` is broken" in warnings and "cannot be loaded" in warnings
    assert at.tabs[1].subheader[0].value == "Model “good”"


def test_unreachable_test_set_is_said_so(app_store, tmp_path, monkeypatch):
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "default")
    card = card_of(store, "default")
    card["test_set"]["source"] = str(tmp_path / "gone.npz")
    (store / "default.json").write_text(json.dumps(card))
    shutil.copy(store / "default.keras", store / "default.keras.bak")  # the card's checksum still matches
    at = run_app(store, monkeypatch)
    assert any("test set is not reachable" in w for w in texts(at.tabs[1].warning))


# --- without a model -----------------------------------------------------------------------------


def test_empty_store_explains_how_to_train_a_model(tmp_path, monkeypatch):
    at = run_app(tmp_path / "empty", monkeypatch)
    assert any("There is no model to recognise digits with yet" in i for i in texts(at.tabs[0].info))
    assert any("No usable model yet" in i for i in texts(at.sidebar.info))
    assert "Train" in [b.label for b in at.sidebar.button]
    assert at.sidebar.text_input[0].label == "Name of the new model"


# --- the training form ---------------------------------------------------------------------------


def submit(at: AppTest, name: str = "", epochs: int | None = None) -> AppTest:
    at.sidebar.text_input[0].set_value(name)
    if epochs is not None:
        at.sidebar.number_input(key="train_epochs").set_value(epochs)
    next(b for b in at.sidebar.button if b.label == "Train").click()
    return at.run()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my model!", "invalid model name 'my model!': use 1-64 letters, digits, '-' or '_'"),
        ("default", "'default' is the shipped model and cannot be replaced from the page"),
    ],
)
def test_a_bad_training_request_is_refused_with_a_specific_message(app_store, monkeypatch, name, message):
    at = submit(run_app(app_store, monkeypatch), name)
    assert not at.exception
    assert any(display.escape_markdown(message) in e for e in texts(at.sidebar.error))


def test_the_epoch_field_is_bounded_by_the_library_limit(app_store, monkeypatch):
    field = run_app(app_store, monkeypatch).sidebar.number_input(key="train_epochs")
    assert (field.min, field.max) == (1, MAX_EPOCHS)


def test_a_preset_fills_the_training_form(app_store, monkeypatch):
    at = run_app(app_store, monkeypatch)
    assert at.sidebar.selectbox(key="train_preset").value == "quick"
    assert at.sidebar.number_input(key="train_epochs").value == PRESETS["quick"].epochs
    assert any(f"learning rate {PRESETS['quick'].learning_rate:g}" in c for c in texts(at.sidebar.caption))
    at.sidebar.selectbox(key="train_preset").set_value("tutorial-large").run()
    large = PRESETS["tutorial-large"]
    assert at.sidebar.selectbox(key="train_architecture").value == large.architecture
    assert at.sidebar.number_input(key="train_epochs").value == large.epochs
    assert at.sidebar.select_slider(key="train_batch_size").value == large.batch_size
    # Presets hold no validation data; the form holds out 10%, and says so, so that validation curves appear
    assert large.validation_split == 0 and at.sidebar.select_slider(key="train_validation").value == 0.1


@pytest.mark.slow
def test_training_from_the_page_makes_the_new_model_active(app_store, small_mnist_npz, tmp_path, monkeypatch):
    """Train; another session's training waits in the queue and is cancelled; a long one is stopped; nobody takes
    another user's name: the store stays intact."""
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "default")
    monkeypatch.setenv("MNIST_DATA", str(small_mnist_npz))
    alice = run_app(store, monkeypatch)
    submit(alice, "tiny", epochs=1)
    assert not alice.exception and not alice.sidebar.error
    assert alice.sidebar.markdown[0].value.startswith("**Training `tiny`**")

    bob = run_app(store, monkeypatch)
    submit(bob, "other", epochs=1)  # one worker on this machine: Bob's waits, it is not refused
    assert not bob.sidebar.warning and not bob.sidebar.error
    assert bob.sidebar.markdown[0].value.startswith("**Waiting: `other`**")
    assert any(c.startswith("Number 1 in the queue;") for c in texts(bob.sidebar.caption))
    assert not any("Stop" == b.label for b in bob.sidebar.button)  # Alice's training is hers to stop
    next(b for b in bob.sidebar.button if b.label == "Cancel").click().run()
    assert any("Training `other` cancelled before it started" in i for i in texts(bob.sidebar.info))

    wait_for(alice, lambda: alice.sidebar.success or alice.sidebar.error)
    assert alice.sidebar.selectbox(key="model").value == "tiny"
    assert any("Trained `tiny`" in s and "test error" in s for s in texts(alice.sidebar.success))
    assert alice.tabs[1].subheader[0].value == "Model “tiny”"
    tiny = card_of(store, "tiny")
    assert tiny["training"]["validation_split"] == 0.1 and tiny["validation_error"] is not None
    assert set(tiny["history"]) >= {"val_loss", "val_accuracy"}  # the curves the page draws
    assert bob.run().sidebar.selectbox(key="model").value == "default"  # the other user keeps theirs
    submit(bob, "tiny", epochs=1)
    taken = display.escape_markdown("'tiny' is another user's model: only its owner can replace it")
    assert any(taken in e for e in texts(bob.sidebar.error)), texts(bob.sidebar.error)

    default_before = (store / "default.keras").read_bytes()
    submit(alice, "long", epochs=200)
    next(b for b in alice.sidebar.button if b.label == "Stop").click()
    wait_for(alice, lambda: alice.sidebar.info or alice.sidebar.error)
    assert any("Training stopped" in i for i in texts(alice.sidebar.info)), texts(alice.sidebar.error)
    assert not (store / "long.keras").exists()
    assert (store / "default.keras").read_bytes() == default_before
    assert alice.sidebar.selectbox(key="model").value == "tiny"


def wait_for(at: AppTest, done, timeout: float = 300) -> None:
    """Rerun the page, as its polling does, until ``done()`` holds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the page did not show the end of the training in time"
        time.sleep(1)
        at.run()
        assert not at.exception, at.exception


# --- uploads (the page calls display.keep_upload; the browser test uploads a real file) ---------------


def test_a_malformed_upload_is_refused_naming_the_file_and_the_problem(mnist, tmp_path):
    header = ",".join(["label", *(f"pixel{i}" for i in range(784))])
    rows = [",".join(map(str, [int(y), *x.ravel().tolist()])) for x, y in zip(mnist.x_train[:20], mnist.y_train[:20],
                                                                               strict=True)]
    rows[5] = rows[5].split(",", 1)[1]  # a row without its label: one field short
    data = ("\n".join([header, *rows]) + "\n").encode()
    with pytest.raises(DataError, match=r"^kaggle\.csv: row 7 has 784 fields, expected 785 \(too few\)$"):
        display.keep_upload("kaggle.csv", data, tmp_path)


# --- hostile input from the browser and the store ----------------------------------------------


def canvas_value(png: bytes | str) -> dict:
    """What the canvas component sends: its drawing as a PNG data URL (a client may send any)."""
    url = png if isinstance(png, str) else "data:image/png;base64," + base64.b64encode(png).decode()
    return {"drawing": {"raw": {"objects": []}, "data": url}}


def drawn(at: AppTest, png: bytes | str) -> AppTest:
    at.session_state["canvas"] = canvas_value(png)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("scale", [1, 2, 4], ids=["screen", "retina", "4x"])
def test_a_drawing_sent_by_the_canvas_is_read_as_before(app_store, handwriting_dir, monkeypatch, scale):
    """The page decodes the canvas' PNG itself now; a drawing at any device pixel ratio up to 4 is predicted."""
    from mnist_core.handwriting import load_pendigits, render_pen_digit

    digit = load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")[0]
    buffer = io.BytesIO()
    Image.fromarray(render_pen_digit(digit, canvas_size=300 * scale, stroke_width=20 * scale)).save(buffer, "PNG")
    at = drawn(run_app(app_store, monkeypatch), buffer.getvalue())
    draw = at.tabs[0]
    assert [m.label for m in draw.metric] == ["Prediction"] and not draw.warning
    assert draw.metric[0].value == str(digit.label)


@pytest.mark.parametrize(
    ("png", "message"),
    [
        (png_bytes(5000, 5000), "the canvas' image: PNG of 5000x5000 pixels, larger than the 1200x1200 accepted"),
        (png_bytes(1201, 300), "the canvas' image: PNG of 1201x300 pixels, larger than the 1200x1200 accepted"),
        (b"GIF89a" + bytes(100), "the canvas' image: not a PNG image"),
        ("not a data URL", "the canvas sent something that is not a PNG data URL"),
        ("data:image/png;base64,@@@", "the canvas' image: not a PNG image (0 bytes"),  # base64 skips what is not
    ],
    ids=["huge", "too-wide", "not-png", "not-a-data-url", "not-base64"],
)
def test_a_canvas_image_larger_than_the_canvas_is_refused_before_decoding(app_store, monkeypatch, png, message):
    at = drawn(run_app(app_store, monkeypatch), png)
    draw = at.tabs[0]
    assert any(display.escape_markdown(message) in w for w in texts(draw.warning)), texts(draw.warning)
    assert "Prediction" not in [m.label for m in draw.metric]
    assert any("Draw a digit" in i for i in texts(draw.info))


def test_markdown_in_a_card_is_shown_as_plain_text(app_store, tmp_path, monkeypatch):
    store = tmp_path / "models"
    copy_model(app_store, "default", store, "default")
    card = card_of(store, "default")
    card["architecture"] = "**bold** [a link](https://example.com) :red[red] `code`"
    (store / "default.json").write_text(json.dumps(card))
    inside = run_app(store, monkeypatch).tabs[1]
    metrics = {m.label: m.value for m in inside.metric}
    assert metrics["Architecture"] == display.escape_markdown(card["architecture"])
    assert display.escape_markdown(card["architecture"]) in " ".join(texts(inside.markdown))


def test_a_model_of_the_wrong_shape_is_listed_as_broken(app_store, tmp_path, monkeypatch):
    """Before, it was listed as usable and raised at every stroke."""
    import keras

    from mnist_core.store import file_sha256

    store = tmp_path / "models"
    copy_model(app_store, "default", store, "good")
    inputs = keras.Input((32, 32, 1))
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs))).save(store / "default.keras")
    card = card_of(app_store, "default")
    card["keras_sha256"] = file_sha256(store / "default.keras")
    (store / "default.json").write_text(json.dumps(card))
    at = run_app(store, monkeypatch)
    assert at.sidebar.selectbox(key="model").value == "good"
    warnings = " ".join(texts(at.sidebar.warning))
    assert "`default` is broken" in warnings
    assert display.escape_markdown("takes inputs of shape (None, 32, 32, 1)") in warnings
