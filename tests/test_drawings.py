"""The store of users' labelled drawings, on real pen digits drawn as the page's canvas draws them."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from mnist_core import drawings as drawings_module
from mnist_core.adapt import read_drawings
from mnist_core.data import load_kaggle_csv
from mnist_core.drawings import DrawingLimitError, DrawingStore, default_drawings_dir
from mnist_core.identity import new_key, owner_of
from mnist_core.preprocessing import ImageError, read_png, to_mnist

ALICE, BOB = owner_of(new_key()), owner_of(new_key())


def png_bytes(image: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def canvas_pngs(handwriting_dir):
    """Thirty real pen digits (three of each, writer 16: held out from the default's training), as the
    canvas' RGBA PNGs; (png, label) pairs."""
    from mnist_core.handwriting import load_pendigits, random_canvas_drawing

    digits = [d for d in load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra") if d.writer == 16]
    rng = np.random.default_rng(0)
    chosen = [d for label in range(10) for d in [d for d in digits if d.label == label][:3]]
    return [(png_bytes(random_canvas_drawing(d, rng)), d.label) for d in chosen]


def files_in(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_a_drawing_is_kept_with_its_record_and_listed_newest_first(canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path)
    (first, label), (second, label2) = canvas_pngs[0], canvas_pngs[5]
    a = store.add(ALICE, first, label, predicted=7, model="default", probabilities=[0.1] * 10)
    b = store.add(ALICE, second, label2, predicted=label2, model="default")
    assert [d.id for d in store.list(ALICE)] == [b.id, a.id]
    assert store.list(ALICE)[1] == a and a.corrected and not b.corrected
    assert a.label == label and a.predicted == 7 and a.model == "default" and a.probabilities == (0.1,) * 10
    assert a.created.endswith("+00:00")
    assert store.image(ALICE, a.id) == first  # the canvas' PNG as it came, byte for byte
    assert (tmp_path / ALICE / "images" / str(label) / f"{a.id}.png").read_bytes() == first
    record = json.loads((tmp_path / ALICE / "records" / f"{a.id}.json").read_text())
    assert record["label"] == label and record["predicted"] == 7
    counts = store.counts(ALICE)
    assert sum(counts) == 2 and counts[label] >= 1 and counts[label2] >= 1


def test_owners_never_see_nor_delete_each_others_drawings(canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path)
    mine = [store.add(ALICE, png, label) for png, label in canvas_pngs[:4]]
    theirs = store.add(BOB, *canvas_pngs[4])
    assert [d.id for d in store.list(BOB)] == [theirs.id] and theirs.id not in {d.id for d in store.list(ALICE)}
    with pytest.raises(KeyError, match="no drawing"):
        store.image(BOB, mine[0].id)
    with pytest.raises(KeyError, match="no drawing"):
        store.delete(BOB, mine[0].id)
    assert store.delete_all(BOB) == 1
    assert store.list(BOB) == [] and len(store.list(ALICE)) == 4
    store.delete(ALICE, mine[1].id)
    assert [d.id for d in store.list(ALICE)] == [mine[3].id, mine[2].id, mine[0].id]
    assert not (tmp_path / ALICE / "records" / f"{mine[1].id}.json").exists()
    assert store.delete_all(ALICE) == 3 and store.list(ALICE) == [] and store.counts(ALICE) == [0] * 10


@pytest.mark.parametrize("owner", ["", "alice", new_key(), "../" + "a" * 13, "ABCDEF0123456789", 12])
def test_an_owner_must_be_an_owner_id(owner, canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path)
    with pytest.raises(ValueError, match="owner must be an owner id .* got") as caught:
        store.add(owner, *canvas_pngs[0])
    assert repr(owner)[:20] in str(caught.value)
    with pytest.raises(ValueError, match="owner must be an owner id"):
        store.list(owner)
    assert files_in(tmp_path) == {}


@pytest.mark.parametrize("drawing_id", ["../../etc/passwd", "20261203T101502000000-zzzzzzzz", ""])
def test_a_drawing_id_that_the_store_never_gave_is_refused(drawing_id, canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path)
    store.add(ALICE, *canvas_pngs[0])
    with pytest.raises(KeyError):
        store.delete(ALICE, drawing_id)
    assert len(store.list(ALICE)) == 1


def test_what_is_not_a_drawing_is_refused_before_anything_is_written(canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path)
    png, label = canvas_pngs[0]
    store.add(ALICE, png, label)
    before = files_in(tmp_path)
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(jpeg, format="JPEG")
    huge = png_bytes(np.zeros((1, 1), np.uint8))
    huge = huge[:16] + (5000).to_bytes(4, "big") + (5000).to_bytes(4, "big") + huge[24:]  # declares 5000x5000
    blank = png_bytes(np.zeros((300, 300, 4), np.uint8))
    for bad, error, message in [
        (jpeg.getvalue(), ImageError, "not a PNG"), (b"hello", ImageError, "not a PNG"),
        (huge, ImageError, "5000x5000 pixels, larger than"), (png[:200], ImageError, "corrupt or truncated"),
        (blank, ValueError, "nothing is drawn"), ("text", ValueError, "png must be the PNG's bytes"),
    ]:
        with pytest.raises(error, match=message):
            store.add(ALICE, bad, label)
    for bad_label in (10, -1, True, "3", 2.0):
        with pytest.raises(ValueError, match="label must be a digit 0-9"):
            store.add(ALICE, png, bad_label)
    with pytest.raises(ValueError, match="predicted must be a digit"):
        store.add(ALICE, png, label, predicted=11)
    with pytest.raises(ValueError, match="probabilities must be ten numbers"):
        store.add(ALICE, png, label, probabilities=[0.5, 0.5])
    assert files_in(tmp_path) == before


def test_limits_per_owner_in_total_and_per_image_are_enforced(canvas_pngs, tmp_path, monkeypatch):
    store = DrawingStore(tmp_path)
    monkeypatch.setattr(drawings_module, "MAX_PER_OWNER", 3)  # the limits as a deployment sets them, smaller
    monkeypatch.setattr(drawings_module, "MAX_TOTAL", 5)
    for png, label in canvas_pngs[:3]:
        store.add(ALICE, png, label)
    with pytest.raises(DrawingLimitError, match="you have 3 drawings, the most one user may keep \\(3\\)"):
        store.add(ALICE, *canvas_pngs[3])
    store.add(BOB, *canvas_pngs[3])
    store.add(BOB, *canvas_pngs[4])
    with pytest.raises(DrawingLimitError, match="the drawings folder is full \\(5 drawings"):
        store.add(BOB, *canvas_pngs[5])
    assert len(store.list(ALICE)) == 3 and len(store.list(BOB)) == 2
    store.delete(ALICE, store.list(ALICE)[0].id)
    store.add(BOB, *canvas_pngs[5])  # room again

    png, label = canvas_pngs[0]
    padded = png_bytes(np.asarray(Image.open(io.BytesIO(png))), pnginfo=_padding(drawings_module.MAX_PNG_BYTES))
    with pytest.raises(DrawingLimitError, match="more than the 1,048,576 a drawing may be"):
        DrawingStore(tmp_path / "other").add(ALICE, padded, label)
    assert not (tmp_path / "other" / ALICE).exists()


def _padding(size: int):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("padding", "x" * size)  # uncompressed text: the file grows by this much
    return info


def test_a_killed_add_leaves_no_drawing_and_is_cleaned_up(canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path)
    kept = store.add(ALICE, *canvas_pngs[0])
    # What an add killed between its two renames leaves: its record in place, its image still a temporary.
    orphan = dict(kept.as_dict(), id="20260101T000000000000-0badc0de")
    (tmp_path / ALICE / "records" / f"{orphan['id']}.json").write_text(json.dumps(orphan))
    (tmp_path / ALICE / ".tmp").mkdir(exist_ok=True)
    (tmp_path / ALICE / ".tmp" / "tmpabc.png").write_bytes(canvas_pngs[1][0])
    assert store.list(ALICE) == [kept] and sum(store.counts(ALICE)) == 1
    with pytest.raises(KeyError):
        store.image(ALICE, orphan["id"])
    store.add(ALICE, *canvas_pngs[2])
    assert not (tmp_path / ALICE / "records" / f"{orphan['id']}.json").exists()
    assert list((tmp_path / ALICE / ".tmp").iterdir()) == []
    assert len(store.list(ALICE)) == 2


def test_the_zip_is_the_class_folder_layout_the_finetune_reads(canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path / "store")
    added = [store.add(ALICE, png, label) for png, label in canvas_pngs]
    archive = zipfile.ZipFile(io.BytesIO(store.zip_bytes(ALICE)))
    assert sorted(archive.namelist()) == sorted([f"{d}/" for d in range(10)] + [f"{d.label}/{d.id}.png" for d in added])
    archive.extractall(tmp_path / "unzipped")
    read = read_drawings(tmp_path / "unzipped")
    assert read.counts == [3] * 10
    by_store = read_drawings(store.images_dir(ALICE))  # the store's own folder is the same data set
    assert by_store.sha256 == read.sha256 and np.array_equal(by_store.images, read.images)
    expected = {d.id: to_mnist(read_png(store.image(ALICE, d.id), max_width=1200, max_height=1200)).image
                for d in added}
    order = sorted(added, key=lambda d: (d.label, d.id))  # read_drawings goes folder by folder, name by name
    assert all(np.array_equal(image, expected[d.id]) for image, d in zip(read.images, order, strict=True))


def test_the_store_folder_is_a_keras_image_dataset(canvas_pngs, tmp_path):
    import keras

    store = DrawingStore(tmp_path)
    added = [store.add(ALICE, png, label) for png, label in canvas_pngs[6:12]]  # only 2s and 3s
    dataset = keras.utils.image_dataset_from_directory(store.images_dir(ALICE), batch_size=None, shuffle=False,
                                                       image_size=(64, 64))
    assert dataset.class_names == [str(d) for d in range(10)]
    assert sorted(int(label) for _, label in dataset) == sorted(d.label for d in added) == [2, 2, 2, 3, 3, 3]


def test_the_csv_is_kaggle_format_normalised_as_the_page_reads_the_canvas(canvas_pngs, tmp_path):
    store = DrawingStore(tmp_path / "store")
    added = [store.add(ALICE, png, label) for png, label in canvas_pngs]
    (tmp_path / "mine.csv").write_bytes(store.csv_bytes(ALICE))
    header = (tmp_path / "mine.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["label", "pixel0"] and header[-1] == "pixel783" and len(header) == 785
    images, labels = load_kaggle_csv(tmp_path / "mine.csv", labelled=True)
    newest_first = store.list(ALICE)
    assert labels.tolist() == [d.label for d in newest_first] and len(newest_first) == len(added)
    for image, d in zip(images, newest_first, strict=True):
        page = to_mnist(read_png(store.image(ALICE, d.id), max_width=1200, max_height=1200)).image
        assert np.array_equal(image, page)
    read = read_drawings(tmp_path / "mine.csv")  # and the finetune reads it
    assert read.counts == [3] * 10 and np.array_equal(read.images, images)


def test_an_empty_store_gives_an_empty_zip_and_a_header_only_csv(tmp_path):
    store = DrawingStore(tmp_path)
    assert store.list(ALICE) == [] and store.counts(ALICE) == [0] * 10
    assert zipfile.ZipFile(io.BytesIO(store.zip_bytes(ALICE))).namelist() == [f"{d}/" for d in range(10)]
    assert store.csv_bytes(ALICE).decode().count("\n") == 1
    assert store.delete_all(ALICE) == 0


def test_the_default_folder_is_beside_models_unless_the_variable_says(monkeypatch, tmp_path):
    monkeypatch.delenv(drawings_module.ENV_VAR, raising=False)
    assert default_drawings_dir() == drawings_module.Path(drawings_module.__file__).resolve().parent.parent / "drawings"
    monkeypatch.setenv(drawings_module.ENV_VAR, str(tmp_path))
    assert default_drawings_dir() == tmp_path and DrawingStore().directory == tmp_path
