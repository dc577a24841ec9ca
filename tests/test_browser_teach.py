"""Teach it your handwriting, in headless Chromium (issue #16): label real pen digits under their prediction,
see them in "My drawings" (yours alone, back after a reload), delete and download them, adapt the model to them
through the training queue, and switch back."""

from __future__ import annotations

import io
import json
import zipfile

import app_driver as driver
import numpy as np
import pytest

from mnist_core.drawings import DrawingStore
from mnist_core.handwriting import PENDIGITS_TRAINING_WRITERS, load_pendigits

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WRITER = 25  # a pendigits writer the shipped default never trained on
DIGITS = (1, 7, 4)  # two drawings of each: one of each is held back from the fine-tune, and measured
LABEL_ROW = ".st-key-label_row"


@pytest.fixture(scope="module")
def server(mnist, tmp_path_factory):
    """The page over a store holding ``default``, with its own drawings folder, fine-tuning on a 2,000-image
    real MNIST slice (the replay) and measuring on 500 of MNIST's test digits."""
    store = tmp_path_factory.mktemp("teach-models")
    data = tmp_path_factory.mktemp("teach-data") / "mnist-2k.npz"
    np.savez(data, x_train=mnist.x_train[30000:32000], y_train=mnist.y_train[30000:32000],
             x_test=mnist.x_test[2000:2500], y_test=mnist.y_test[2000:2500])
    driver.store_with_default(store, data, epochs=1)
    drawings = tmp_path_factory.mktemp("teach-drawings")
    server = driver.start_server(store, tmp_path_factory.mktemp("server") / "streamlit.log", data=data,
                                 drawings_dir=drawings)
    yield server, store, drawings
    server.stop()


@pytest.fixture(scope="module")
def writer_digits(handwriting_dir):
    assert WRITER not in PENDIGITS_TRAINING_WRITERS
    pen = [d for d in load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra") if d.writer == WRITER]
    return [d for digit in DIGITS for d in [p for p in pen if p.label == digit][:2]]


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def drawings_caption(page, timeout: float = 30):
    """The "N drawings of yours" line of My drawings, once it is there."""
    caption = page.get_by_text("drawings of yours")
    caption.wait_for(timeout=timeout * 1000)
    return caption


def active_model(page) -> str:
    return page.locator(driver.SIDEBAR).get_by_role("combobox", name="Active model").input_value()


def test_label_keep_delete_download_adapt_and_switch_back(server, chromium, writer_digits):
    server, store, drawings_dir = server
    page = driver.open_page(chromium, server.url)
    try:
        for digit in writer_digits:  # each labelled with what it is, whatever the model read
            driver.draw_digit(page, digit)
            driver.read_prediction(page)
            page.locator(LABEL_ROW).get_by_role("button", name=str(digit.label), exact=True).click()
            page.get_by_text(f"Kept as a {digit.label} (").first.wait_for(timeout=20_000)
            page.get_by_text(driver.HINT).wait_for(timeout=20_000)  # and the canvas cleared for the next one
        me = driver.owner_in(page.url)
        drawings = DrawingStore(drawings_dir)
        kept = drawings.list(me)
        assert drawings.counts(me) == [2 if d in DIGITS else 0 for d in range(10)]
        assert all(d.model == "default" and d.predicted is not None and len(d.probabilities) == 10 for d in kept)
        assert sorted(p.name for p in (drawings_dir / me / "images").rglob("*.png")) == sorted(
            f"{d.id}.png" for d in kept)  # the PNGs themselves, by label, on disk

        # Another user sees none of them.
        other = driver.open_page(chromium, server.url)
        try:
            open_tab(other, "My drawings")
            other.get_by_text("None yet.").wait_for(timeout=30_000)
            assert other.get_by_text("drawings of yours").count() == 0
        finally:
            other.context.close()

        # A reload with the personal link brings them back; one deleted is gone from disk too.
        page.goto(page.url)
        page.get_by_text(driver.HINT).wait_for(timeout=60_000)
        open_tab(page, "My drawings")
        assert drawings_caption(page).inner_text().startswith("6 drawings of yours")
        page.get_by_role("button", name="Delete", exact=True).first.click()
        page.get_by_text("Deleted one drawing.").wait_for(timeout=30_000)
        assert drawings_caption(page).inner_text().startswith("5 drawings of yours")
        assert len(drawings.list(me)) == 5 and kept[0].id not in {d.id for d in drawings.list(me)}  # the newest

        with page.expect_download() as download:
            page.get_by_role("button", name="Download as folders (zip)").click()
        with zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read())) as archive:
            images = [n for n in archive.namelist() if n.endswith(".png")]
        assert sorted(images) == sorted(f"{d.label}/{d.id}.png" for d in drawings.list(me))

        # Adapt: a fine-tune through the queue; the new model is this user's, active, and says what it measured.
        page.get_by_role("button", name="Adapt to my handwriting").click()
        page.locator(driver.SIDEBAR).get_by_text("It is now your active model").wait_for(timeout=600_000)
        name = f"default-yours-{me[:6]}"
        assert active_model(page).startswith(f"{name} ·") and active_model(page).endswith("· yours")
        card = json.loads((store / f"{name}.json").read_text())
        assert card["owner"] == me and card["base_model"]["name"] == "default"
        assert card["adaptation"]["count"] == 5 and card["adaptation"]["held_back"] == 2  # one of each pair
        summary = page.get_by_text(f"{name} is default adapted to 3 of your 5 drawings")
        summary.first.wait_for(timeout=30_000)
        after = card["adaptation"]["accuracy_after"]
        assert f"reads {after:.0f}%" in summary.first.inner_text()
        assert f"{card['test_error']:.2f}% (500 test digits)" in summary.first.inner_text()

        page.get_by_role("button", name="Switch back to default").click()
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stSidebar\"] input[role=combobox]')"
                               ".value.startsWith('default-yours')", timeout=30_000)
        assert active_model(page).startswith("default ·")
        assert "model=default" in page.url
    finally:
        page.context.close()
