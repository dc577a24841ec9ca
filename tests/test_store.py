"""The model store on real files: round trips, names, atomic saves, broken and hostile files."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from test_litert import one_at_a_time

from mnist_core import store as store_module
from mnist_core.architectures import as_model_input, build
from mnist_core.card import ModelCard
from mnist_core.litert import LiteRTModel, to_litert
from mnist_core.predictor import Predictor
from mnist_core.store import ModelOwnedError, ModelStore, ModelStoreError, check_name, file_sha256

ROOT = Path(__file__).resolve().parent.parent


def copy_model(source: ModelStore, name: str, target: ModelStore, as_name: str | None = None) -> None:
    model, card = source.load(name)
    card.name = as_name or name
    target.save(model, card)


def store_files(directory: Path) -> list[str]:
    """The names of a store folder's files but its lock file (which stays, empty, once the store was changed)."""
    return sorted(p.name for p in directory.iterdir() if p.name != store_module.LOCK_FILE)


def assert_litert_copy_computes(store: ModelStore, name: str, images: np.ndarray) -> None:
    """Model ``name``'s LiteRT copy is in use and gives its Keras model's probabilities."""
    model, card = store.load(name)
    flatbuffer = store.load_litert(name, card)
    assert flatbuffer is not None, f"{name}'s LiteRT copy is missing or does not match its card"
    expected = np.asarray(model(as_model_input(images)))
    np.testing.assert_allclose(one_at_a_time(LiteRTModel(flatbuffer), images), expected, atol=1e-5)


def test_round_trips_a_model_and_its_card(trained_store, small_mnist_npz, tmp_path):
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "copy")
    original, _ = trained_store.load("small")
    loaded, card = store.load("copy")
    x = as_model_input(np.load(small_mnist_npz)["x_test"][:50])
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(original(x)), rtol=1e-5, atol=1e-6)
    saved = json.loads((tmp_path / "copy.json").read_text())
    assert saved["name"] == "copy" and saved["architecture"] == "simple" and saved["parameters"] == 592_074
    assert card.test_set.n_test == 1000 and 0 <= card.test_error < 20
    assert card.data.sha256 and card.tensorflow and card.keras and card.command == "pytest fixture"
    assert len(card.history["loss"]) == card.epochs_run == 2
    assert sum(map(sum, card.confusion)) == 1000 and len(card.misclassified) == round(card.test_error * 10)
    assert (tmp_path / "copy.keras").stat().st_mode & 0o644 == 0o644
    assert card.litert_sha256 == saved["litert_sha256"] and (tmp_path / "copy.tflite").is_file()
    assert_litert_copy_computes(store, "copy", np.load(small_mnist_npz)["x_test"][:50])


def test_a_litert_copy_that_is_missing_or_does_not_match_its_card_is_not_used(trained_store, small_mnist_npz, tmp_path):
    """The model stays usable (the predictor converts it itself); only a copy that matches is used."""
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "a")
    _, card = store.load("a")
    digit = np.load(small_mnist_npz)["x_test"][0]
    (tmp_path / "a.tflite").write_bytes((trained_store.directory / "small.tflite").read_bytes()[:-1000])
    assert store.load_litert("a", card) is None and store.inspect("a").ok
    (tmp_path / "a.tflite").write_bytes(to_litert(build("simple")))  # a valid copy, of another model
    assert store.load_litert("a", card) is None and store.inspect("a").ok
    (tmp_path / "a.tflite").unlink()
    assert store.load_litert("a", card) is None and store.inspect("a").ok
    predictor = Predictor.load("a", store)  # converts the model itself
    alone, in_a_batch = predictor.predict(digit), predictor.predict_many([digit, digit])[0]
    assert alone.digit is not None
    np.testing.assert_allclose(alone.probabilities, in_a_batch.probabilities, atol=1e-5)


def test_make_litert_copy_gives_a_model_its_copy_and_leaves_the_keras_file_alone(trained_store, small_mnist_npz,
                                                                                  tmp_path):
    """As for a model saved before copies existed (the shipped default was)."""
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "old")
    (tmp_path / "old.tflite").unlink()
    card = json.loads((tmp_path / "old.json").read_text())
    del card["litert_sha256"]
    (tmp_path / "old.json").write_text(json.dumps(card))
    keras_before = (tmp_path / "old.keras").read_bytes()
    assert store.load_litert("old", store.load("old")[1]) is None

    assert store.make_litert_copy("old") == tmp_path / "old.tflite"

    assert (tmp_path / "old.keras").read_bytes() == keras_before
    after = json.loads((tmp_path / "old.json").read_text())
    assert {k: v for k, v in after.items() if k != "litert_sha256"} == card and after["litert_sha256"]
    assert_litert_copy_computes(store, "old", np.load(small_mnist_npz)["x_test"][:20])
    assert store_files(tmp_path) == ["old.json", "old.keras", "old.tflite"]


def test_lists_models_default_first_and_ignores_other_files(trained_store, tmp_path):
    store = ModelStore(tmp_path)
    for name in ("zeta", "default", "alpha"):
        copy_model(trained_store, "small", store, name)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / ".tmp-alpha-123.keras").write_bytes(b"half")
    assert [m.name for m in store.list()] == ["default", "alpha", "zeta"]
    assert all(m.ok for m in store.list())


@pytest.mark.parametrize(
    "name",
    ["../x", "/etc/passwd", "a/b", "..", ".", "", "with space", "tab\tname", "new\nline", "nul\x00", "é", "x" * 65,
     "name.keras"],
)
def test_invalid_names_are_refused(name, tmp_path):
    with pytest.raises(ValueError, match="invalid model name"):
        check_name(name)
    with pytest.raises(ValueError, match="invalid model name"):
        ModelStore(tmp_path).inspect(name)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["default", "simple-10e", "my_model_2", "A" * 64])
def test_valid_names_are_accepted(name):
    assert check_name(name) == name


def test_unknown_model_says_how_to_make_one(tmp_path):
    with pytest.raises(ModelStoreError, match="no model named 'nope'.*python -m mnist_core train --name nope"):
        ModelStore(tmp_path).load("nope")


def test_truncated_model_file_is_listed_as_broken(trained_store, tmp_path):
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "good")
    copy_model(trained_store, "small", store, "cut")
    data = (tmp_path / "cut.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    by_name = {m.name: m for m in store.list()}
    assert by_name["good"].ok
    assert not by_name["cut"].ok and "does not match its card" in by_name["cut"].problem
    with pytest.raises(ModelStoreError, match="'cut' cannot be used"):
        store.load("cut")
    store.load("good")


def test_corrupt_file_whose_card_has_no_checksum_fails_to_load_with_a_message(trained_store, tmp_path):
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "junk")
    (tmp_path / "junk.keras").write_bytes(b"this is not a zip archive")
    card = json.loads((tmp_path / "junk.json").read_text())
    card["keras_sha256"] = ""
    (tmp_path / "junk.json").write_text(json.dumps(card))
    with pytest.raises(ModelStoreError, match="'junk' cannot be loaded from .*junk.keras"):
        store.load("junk")


def test_missing_or_unreadable_card_is_reported(trained_store, tmp_path):
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "nocard")
    copy_model(trained_store, "small", store, "badcard")
    (tmp_path / "nocard.json").unlink()
    (tmp_path / "badcard.json").write_text("{not json")
    problems = {m.name: m.problem for m in store.list()}
    assert "nocard.json (its card) is missing" in problems["nocard"]
    assert "badcard.json is not a valid card" in problems["badcard"]


def test_a_model_carrying_code_is_refused_not_run(tmp_path):
    """A Lambda layer holds Python bytecode; safe mode must refuse it without running it."""
    marker = tmp_path / "executed"
    inputs = keras.Input((28, 28, 1))
    code = f"lambda x: (open({str(marker)!r}, 'w').write('pwned'), x)[1]"
    outputs = keras.layers.Lambda(eval(code))(inputs)  # noqa: S307 - building the hostile file on purpose
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(outputs))
    hostile = keras.Model(inputs, outputs)
    store = ModelStore(tmp_path)
    store.save(hostile, ModelCard.from_dict({"name": "evil", "architecture": "lambda", "parameters": 1}))
    marker.unlink()  # building the model and tracing its LiteRT copy ran the lambda; loading must not
    with pytest.raises(ModelStoreError, match="'evil' cannot be loaded.*(unsafe|safe_mode|Lambda)"):
        store.load("evil")
    assert not marker.exists()


@contextlib.contextmanager
def unwritable(directory: Path):
    """Make ``directory`` refuse new files, for root too (root ignores permission bits, not the immutable flag)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(directory)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
    else:
        os.chmod(directory, 0o500)
        try:
            yield
        finally:
            os.chmod(directory, 0o755)


@contextlib.contextmanager
def small_filesystem(directory: Path, size_bytes: int):
    """Mount a tmpfs of ``size_bytes`` at ``directory`` (needs root): a disk that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem to fill up needs root")
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def test_save_without_permission_leaves_the_previous_model_and_no_temporary_file(trained_store, tmp_path):
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "kept")
    before = (tmp_path / "kept.keras").read_bytes()
    model, card = store.load("kept")
    refused = "could not save model 'kept' in .*(denied|not permitted)"
    with unwritable(tmp_path), pytest.raises(ModelStoreError, match=refused):
        store.save(model, card)
    assert (tmp_path / "kept.keras").read_bytes() == before
    assert store_files(tmp_path) == ["kept.json", "kept.keras", "kept.tflite"]
    store.load("kept")


def test_save_on_a_full_disk_leaves_the_previous_model_and_no_temporary_file(trained_store, tmp_path):
    model, card = trained_store.load("small")
    size = sum((trained_store.directory / f"small{suffix}").stat().st_size for suffix in (".keras", ".tflite"))
    with small_filesystem(tmp_path / "disk", size + 256 * 1024) as disk:
        store = ModelStore(disk)
        copy_model(trained_store, "small", store, "kept")
        before = (disk / "kept.keras").read_bytes()
        card.name = "kept"
        with pytest.raises(ModelStoreError, match="could not save model 'kept'.*No space left"):
            store.save(model, card)
        assert (disk / "kept.keras").read_bytes() == before
        assert store_files(disk) == ["kept.json", "kept.keras", "kept.tflite"]
        assert_litert_copy_computes(store, "kept", np.zeros((1, 28, 28), np.uint8))


SAVE_FOREVER = """
import sys
from mnist_core.store import ModelStore
source, target = ModelStore(sys.argv[1]), ModelStore(sys.argv[2])
model, card = source.load("small")
card.name = "victim"
print("ready", flush=True)
while True:
    card.epochs_run += 1  # every save writes a different card
    target.save(model, card)
"""


def test_a_save_killed_before_its_last_rename_is_completed_by_the_clean_up(trained_store, small_mnist_npz, tmp_path):
    """The new NAME.tflite and NAME.keras are in place, the card still a temporary file: the clean-up moves it in."""
    store = ModelStore(tmp_path / "store")
    copy_model(trained_store, "small", store, "victim")
    old_card = (store.directory / "victim.json").read_text()
    newer = ModelStore(tmp_path / "newer")  # the complete new pair, as the killed save had written it
    model, card = trained_store.load("small")
    model.set_weights([w + 0.01 for w in model.get_weights()])  # a retrained model: other weights, another card
    card.name, card.epochs_run = "victim", 99
    newer.save(model, card)
    for renamed in ("victim.tflite", "victim.keras"):  # the first two renames happened
        os.replace(newer.directory / renamed, store.directory / renamed)
    os.replace(newer.directory / "victim.json", store.directory / ".tmp-victim-k1ll3d.json")  # the last did not
    (store.directory / ".tmp-victim-0ther.keras").write_bytes(b"half a model")  # another killed save's leftover
    assert not store.inspect("victim").ok and (store.directory / "victim.json").read_text() == old_card

    removed = store.remove_stale_temporaries("victim")

    assert [p.name for p in removed] == [".tmp-victim-0ther.keras"]
    assert store_files(store.directory) == ["victim.json", "victim.keras", "victim.tflite"]
    entry = store.inspect("victim")
    assert entry.ok and entry.card.epochs_run == 99
    assert_litert_copy_computes(store, "victim", np.load(small_mnist_npz)["x_test"][:20])


def test_a_temporary_card_that_does_not_match_the_model_in_place_is_deleted(trained_store, tmp_path):
    """Killed before the first rename: the old pair stays, the new card (of a file never put in place) goes."""
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "victim")
    card = json.loads((tmp_path / "victim.json").read_text())
    card["keras_sha256"] = "0" * 64
    (tmp_path / ".tmp-victim-early.json").write_text(json.dumps(card))
    assert [p.name for p in store.remove_stale_temporaries()] == [".tmp-victim-early.json"]
    assert store.inspect("victim").ok and json.loads((tmp_path / "victim.json").read_text())["keras_sha256"] != "0" * 64


@pytest.mark.slow
def test_a_save_killed_midway_leaves_the_previous_model_loadable(trained_store, tmp_path):
    """SIGKILL a process that saves over and over, at several moments; the store is never damaged."""
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "victim")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for delay in (0.5, 1.3, 2.1, 2.9, 3.7, 4.5):  # a save takes ~1.5 s: these land in its every phase
        child = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(trained_store.directory), str(tmp_path)],
                                 stdout=subprocess.PIPE, env=env, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        listing = store.list()
        assert [m.name for m in listing] == ["victim"] and listing[0].ok, listing
        model, card = store.load("victim")
        assert model(np.zeros((1, 28, 28, 1), np.float32)).shape == (1, 10)
        # The copy is used only when it matches the card; a copy that is used gives the model's answers.
        if store.load_litert("victim", card) is not None:
            assert_litert_copy_computes(store, "victim", np.zeros((1, 28, 28), np.uint8))
    store.remove_stale_temporaries()
    assert store_files(tmp_path) == ["victim.json", "victim.keras", "victim.tflite"]


# --- hostile or outsized model files ---------------------------------------------------------------


def rezip(path: Path, extra: dict[str, bytes] | None = None, pad_config: int = 0) -> None:
    """Rewrite the ``.keras`` zip at ``path``: ``config.json`` padded with ``pad_config`` spaces, ``extra`` members
    added (deflated: a few hundred KB on disk however large they unpack)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members["config.json"] += b" " * pad_config  # still valid JSON: Keras would read and parse it all
    members.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def card_matching_its_file(store: ModelStore, name: str) -> None:
    """Record the ``.keras`` file's checksum on its card, so that nothing but the file's content is at fault."""
    card = json.loads(store.files(name).card.read_text())
    card["keras_sha256"] = file_sha256(store.files(name).keras)
    store.files(name).card.write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (dict(pad_config=6 * 2**20), r"padded.keras: its config.json is 6 MB, more than the 5 MB a model's "
                                     r"configuration may be \(not loaded\)"),
        (dict(extra={"assets/big.bin": bytes(250 * 2**20)}), r"padded.keras unpacks to 252 MB, more than the "
                                                             r"200 MB a model may be \(not loaded\)"),
    ],
    ids=["padded-config", "large-assets"],
)
def test_a_model_file_that_unpacks_too_large_is_broken_before_keras_sees_it(trained_store, tmp_path, damage,
                                                                            problem):
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "padded")
    rezip(store.files("padded").keras, **damage)
    card_matching_its_file(store, "padded")
    assert store.files("padded").keras.stat().st_size < 10 * 2**20
    entry = store.inspect("padded")
    assert not entry.ok and re.fullmatch(problem, entry.problem), entry.problem
    with pytest.raises(ModelStoreError, match=f"model 'padded' cannot be used: {problem}"):
        store.load("padded")


def test_a_huge_model_file_is_listed_as_broken_without_being_read(trained_store, tmp_path):
    """An 8 GB sparse file: hashing it at each listing took 33 s."""
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "huge")
    with open(store.files("huge").keras, "r+b") as f:
        f.truncate(8 * 2**30)
    started = time.perf_counter()
    entry = store.list()[0]
    assert time.perf_counter() - started < 1
    assert entry.problem == "huge.keras is 8,192 MB, more than the 200 MB a model file may be (not read)"
    with pytest.raises(ModelStoreError, match="'huge' cannot be used: huge.keras is 8,192 MB"):
        store.load("huge")


def test_a_model_files_checksum_is_computed_once_until_the_file_changes(trained_store, tmp_path, monkeypatch):
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "kept")
    hashed = []
    real_hash = store_module._hash_file
    monkeypatch.setattr(store_module, "_hash_file", lambda path: hashed.append(path) or real_hash(path))
    for _ in range(3):
        assert store.list()[0].ok
    assert hashed == [store.files("kept").keras]
    keras_path = store.files("kept").keras
    before = keras_path.stat()
    with open(keras_path, "r+b") as f:  # one byte changed, size and modification time put back
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(keras_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "checksum differs" in store.inspect("kept").problem  # the ctime changed: hashed again
    assert len(hashed) == 2


@pytest.mark.parametrize(
    ("shape", "outputs"),
    [((32, 32, 1), 10), ((28, 28), 10), ((28, 28, 1), 5)],
    ids=["32x32-input", "no-channel", "five-outputs"],
)
def test_a_model_of_the_wrong_shape_is_refused_when_loaded(tmp_path, shape, outputs):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, keras.layers.Dense(outputs, activation="softmax")(keras.layers.Flatten()(inputs)))
    store = ModelStore(tmp_path)
    model.save(store.files("odd").keras)  # not through the store, whose LiteRT conversion would fail on it
    card = ModelCard.from_dict({"name": "odd", "architecture": "simple", "parameters": 1})
    card.keras_sha256 = file_sha256(store.files("odd").keras)
    store.files("odd").card.write_text(json.dumps(card.to_dict()))
    assert store.inspect("odd").ok  # nothing is wrong with the files: only loading can tell
    expected = (rf"model 'odd' in .*odd.keras takes inputs of shape \(None, {', '.join(map(str, shape))}\) and "
                rf"gives outputs of shape \(None, {outputs}\); a digit model takes \(None, 28, 28, 1\)")
    with pytest.raises(ModelStoreError, match=expected):
        store.load("odd")


def test_every_architecture_and_an_ensemble_has_the_shapes_a_digit_model_needs(trained_store):
    from mnist_core.architectures import ARCHITECTURES, ensemble

    for name in ARCHITECTURES:
        model = build(name)
        assert (model.input_shape, model.output_shape) == (store_module.INPUT_SHAPE, store_module.OUTPUT_SHAPE)
    pair = ensemble([build("baseline"), build("baseline")])
    assert (pair.input_shape, pair.output_shape) == (store_module.INPUT_SHAPE, store_module.OUTPUT_SHAPE)
    trained_store.load("small")


@pytest.mark.slow
def test_a_killed_saves_temporary_files_are_removed_by_the_next_listing_a_live_ones_once_stale(trained_store, tmp_path):
    """As after a command-line training killed while saving: no page runner cleans up after it. Its files name
    the process that wrote them, which has ended; those of a process still running stay until stale."""
    store = ModelStore(tmp_path)
    copy_model(trained_store, "small", store, "victim")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(trained_store.directory), str(tmp_path)],
                             stdout=subprocess.PIPE, env=env, text=True)
    assert child.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".tmp-") for p in os.scandir(tmp_path)):  # no sleep: a save is brief
        assert time.monotonic() < deadline, "no save was seen"
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert left and all(f"-{child.pid}-" in name for name in left)
    live = tmp_path / f".tmp-victim-{os.getpid()}-abcd_123.keras"  # a save of this (live) process, writing now
    older_format = tmp_path / ".tmp-victim-running.keras"  # a writer of an older version: its process unknown
    for path in (live, older_format):
        path.write_bytes(b"half a model")
    listing = store.list()
    assert [m.name for m in listing] == ["victim"] and listing[0].ok
    assert store_files(tmp_path) == sorted([live.name, older_format.name, "victim.json", "victim.keras",
                                            "victim.tflite"])
    stale = time.time() - store_module.STALE_TEMP_SECONDS - 60
    os.utime(older_format, (stale, stale))
    assert store.list()[0].ok
    assert store_files(tmp_path) == sorted([live.name, "victim.json", "victim.keras", "victim.tflite"])
    os.utime(live, (stale, stale))  # a live writer that has not touched its file for so long is taken for stuck
    store.list()
    assert store_files(tmp_path) == ["victim.json", "victim.keras", "victim.tflite"]


# --- owners and deleting ---------------------------------------------------------------------------

ALICE, BOB = "a1" * 8, "b2" * 8  # owner ids, as mnist_core.identity.owner_of makes them


def save_as(store: ModelStore, source: ModelStore, name: str, owner: str) -> None:
    model, card = source.load("small")
    card.name, card.owner = name, owner
    store.save(model, card)


def test_only_a_models_owner_replaces_it_and_the_refusal_says_whose_it_is(trained_store, tmp_path):
    store = ModelStore(tmp_path)
    save_as(store, trained_store, "mine", ALICE)
    before = (tmp_path / "mine.keras").read_bytes()
    with pytest.raises(ModelOwnedError, match=rf"^model 'mine' was trained by owner {ALICE} and cannot be replaced "
                                              rf"by owner {BOB}: only its owner can, so choose another name$"):
        save_as(store, trained_store, "mine", BOB)
    with pytest.raises(ModelOwnedError, match="cannot be replaced by the command line"):
        save_as(store, trained_store, "mine", "")
    assert (tmp_path / "mine.keras").read_bytes() == before and store.owner("mine") == ALICE
    assert store_files(tmp_path) == ["mine.json", "mine.keras", "mine.tflite"]  # nothing left of the refusals
    save_as(store, trained_store, "mine", ALICE)  # its owner may
    save_as(store, trained_store, "cli", "")
    with pytest.raises(ModelOwnedError, match="trained by the command line .no owner. and cannot be replaced by owner"):
        store.check_replaceable("cli", ALICE)
    save_as(store, trained_store, "cli", "")  # the command line replaces its own
    store.check_replaceable("new-name", BOB)  # a free name is anyone's
    assert store.owner("new-name") is None and store.owner("cli") == ""


def test_a_model_is_deleted_by_its_owner_only_and_default_never(trained_store, tmp_path):
    store = ModelStore(tmp_path)
    save_as(store, trained_store, "mine", ALICE)
    save_as(store, trained_store, "default", "")
    with pytest.raises(ModelOwnedError, match=rf"^model 'mine' was trained by owner {ALICE} and cannot be deleted "
                                              rf"by owner {BOB}: only its owner can$"):
        store.delete("mine", BOB)
    with pytest.raises(ModelStoreError, match="'default' is the shipped model and cannot be deleted"):
        store.delete("default", "")
    with pytest.raises(ModelStoreError, match="no model named 'nothing'"):
        store.delete("nothing", ALICE)
    (tmp_path / "broken.keras").write_bytes(b"no card")
    with pytest.raises(ModelStoreError, match="'broken' has no readable card, so who trained it is unknown"):
        store.delete("broken", ALICE)
    assert [m.name for m in store.list() if m.ok] == ["default", "mine"]
    store.delete("mine", ALICE)
    assert [m.name for m in store.list()] == ["default", "broken"]
    assert store_files(tmp_path) == ["broken.keras", "default.json", "default.keras", "default.tflite"]


def test_a_delete_killed_after_moving_the_card_is_undone_by_the_clean_up(trained_store, tmp_path):
    """Its files are first renamed to temporaries of its own process: the copy, then the card, then the model.
    Killed with the card moved and the model not, the clean-up puts the card back: the model stays, usable."""
    store = ModelStore(tmp_path)
    save_as(store, trained_store, "mine", ALICE)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended
    os.replace(tmp_path / "mine.tflite", tmp_path / f".tmp-mine-{pid}-aaaaaaaa.tflite")
    os.replace(tmp_path / "mine.json", tmp_path / f".tmp-mine-{pid}-bbbbbbbb.json")
    assert [m.ok for m in store.list()] == [True]  # the listing cleaned up, putting the card back
    assert store_files(tmp_path) == ["mine.json", "mine.keras"] and store.owner("mine") == ALICE
    store.delete("mine", ALICE)
    assert store_files(tmp_path) == []


SAVE_AT = """
import sys, time
from mnist_core.store import ModelStore, ModelOwnedError
source, target, name, owner, at, times = sys.argv[1:]
model, card = ModelStore(source).load("small")
card.name, card.owner = name, owner
print("ready", flush=True)
time.sleep(max(0.0, float(at) - time.time()))
for i in range(int(times)):
    card.epochs_run = 100 + i  # each save a card of its own
    try:
        ModelStore(target).save(model, card)
        print("saved", flush=True)
    except ModelOwnedError as exc:
        print("refused", exc, flush=True)
"""


def save_at_once(trained_store: ModelStore, target: Path, jobs: list[tuple[str, str]], times: int) -> list[list[str]]:
    """Each (name, owner) of ``jobs`` saved ``times`` times by a process of its own, all starting together."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    at = time.time() + 30  # after each has loaded TensorFlow and the model (~10 s each on 2 busy cores)
    children = [subprocess.Popen([sys.executable, "-c", SAVE_AT, str(trained_store.directory), str(target), name,
                                  owner, str(at), str(times)], stdout=subprocess.PIPE, env=env, text=True)
                for name, owner in jobs]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    assert time.time() < at, "the savers were not ready in time"
    outputs = [child.communicate(timeout=300)[0].splitlines() for child in children]
    assert [child.returncode for child in children] == [0] * len(children), outputs
    return outputs


def assert_sound(store: ModelStore, names: list[str], digits: np.ndarray) -> None:
    listing = store.list()
    assert [m.name for m in listing] == sorted(names) and all(m.ok for m in listing), listing
    for name in names:
        assert_litert_copy_computes(store, name, digits)
    assert store_files(store.directory) == sorted(f"{n}{s}" for n in names for s in (".json", ".keras", ".tflite"))


@pytest.mark.slow
def test_two_processes_saving_at_the_same_moment_never_damage_the_store(trained_store, small_mnist_npz, tmp_path):
    """As two page servers on one folder: the same name (one owner), two names, and two owners racing for a
    new name, of whom exactly one gets it."""
    digits = np.load(small_mnist_npz)["x_test"][:20]
    store = ModelStore(tmp_path)
    outputs = save_at_once(trained_store, tmp_path, [("shared", ALICE), ("shared", ALICE)], times=3)
    assert outputs == [["saved"] * 3] * 2
    assert_sound(store, ["shared"], digits)
    assert store.inspect("shared").card.epochs_run in (100, 101, 102)

    outputs = save_at_once(trained_store, tmp_path, [("one", ALICE), ("two", BOB)], times=3)
    assert outputs == [["saved"] * 3] * 2
    assert_sound(store, ["one", "shared", "two"], digits)
    assert (store.owner("one"), store.owner("two")) == (ALICE, BOB)

    outputs = save_at_once(trained_store, tmp_path, [("race", ALICE), ("race", BOB)], times=1)
    winner = [out == ["saved"] for out in outputs]
    assert sorted(winner) == [False, True], outputs
    loser = outputs[winner.index(False)][0]
    assert loser.startswith("refused model 'race' was trained by owner") and "cannot be replaced" in loser
    assert store.owner("race") == (ALICE, BOB)[winner.index(True)]
    assert_sound(store, ["one", "race", "shared", "two"], digits)
