"""The real page in headless Chromium: drawing real pen strokes, training, uploading, two users at once.

One server for the module (``streamlit run app.py``), with a model store holding a
real trained model: a copy of the shipped ``models/default`` if there is one, else
the simple CNN trained here for 3 epochs on 12,000 real MNIST images. The server's
``MNIST_DATA`` is a small real slice of MNIST, so that training from the sidebar is quick.

Also measures, and prints, the time from starting the server to a usable page and from
releasing the mouse to the new prediction (``benchmarks/bench_browser.py`` is the benchmark).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import app_driver as driver
import numpy as np
import pytest
from playwright.sync_api import expect

from mnist_core.handwriting import canvas_points, load_pendigits
from mnist_core.store import ModelStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DIGITS_PER_CLASS = 2
MIN_ACCURACY = 0.7  # the model trained here is weaker than the shipped default
SIDEBAR = '[data-testid="stSidebar"]'
TRAINING_EPOCHS = 60  # of the simple CNN on the server's 2,000 images


@pytest.fixture(scope="module")
def pen_digits(handwriting_dir):
    return load_pendigits(handwriting_dir / "pendigits" / "pendigits-orig.tra")


@pytest.fixture(scope="module")
def app_data(mnist, tmp_path_factory) -> Path:
    """The server's MNIST_DATA: 2,000 real training and 500 real test images (a quick training)."""
    path = tmp_path_factory.mktemp("app-data") / "mnist-2k.npz"
    np.savez(path, x_train=mnist.x_train[20000:22000], y_train=mnist.y_train[20000:22000],
             x_test=mnist.x_test[5000:5500], y_test=mnist.y_test[5000:5500])
    return path


@pytest.fixture(scope="module")
def model_store(mnist, tmp_path_factory) -> Path:
    """A store holding ``default``: the shipped model if it is there and sound, else one trained now."""
    data = tmp_path_factory.mktemp("model-data") / "mnist-12k.npz"
    np.savez(data, x_train=mnist.x_train[:12000], y_train=mnist.y_train[:12000],
             x_test=mnist.x_test[:2000], y_test=mnist.y_test[:2000])
    return driver.store_with_default(tmp_path_factory.mktemp("browser-models"), data, epochs=3)


@pytest.fixture(scope="module")
def measurements():
    return driver.Measurements()


@pytest.fixture(scope="module")
def server(model_store, app_data, chromium, measurements, tmp_path_factory):
    """The app, started now; its startup is measured with the first page that opens it."""
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    server = driver.start_server(model_store, log, data=app_data)
    try:
        measurements.startup = driver.startup_times(server, chromium)
        yield server
    finally:
        server.stop()
    if measurements.drawn:
        card = json.loads((model_store / "default.json").read_text())
        model = {"name": "default", "architecture": card["architecture"], "test_error": card["test_error"],
                 "n_test": card["test_set"].get("n_test")}
        # Into the test run's own folder: benchmarks/results/ holds only what benchmarks/ measured.
        measurements.write(tmp_path_factory.mktemp("results") / "browser.json", "tests/test_browser.py", model)


@pytest.fixture
def page(server, chromium):
    page = driver.open_page(chromium, server.url)
    yield page
    page.context.close()


def sidebar_button(page, label: str):
    return page.locator(f"{SIDEBAR} button", has_text=label).first


def active_model(page) -> str:
    return page.locator(SIDEBAR).get_by_role("combobox", name="Active model").input_value()


# --- drawing -----------------------------------------------------------------------------------------


def test_drawn_digits_are_recognised_as_they_are_drawn(page, pen_digits, measurements, capsys):
    """Real pen strokes of every class, replayed with the mouse; the canvas cleared between digits."""
    expect(page.get_by_text(driver.HINT)).to_be_visible()
    for digit in driver.choose_digits(pen_digits, DIGITS_PER_CLASS):
        driver.draw_digit(page, digit)
        text, ms = driver.read_prediction(page)
        measurements.drawn.append((digit.label, text, ms))
        expect(page.get_by_text(driver.HINT)).to_be_hidden()
        driver.clear(page)
        expect(page.get_by_test_id("stMetricLabel").filter(has_text="Prediction")).to_have_count(0)
    with capsys.disabled():  # the figures go to the terminal even when pytest captures output
        print(f"\n[browser] startup (s): {measurements.startup}; mouse-up to prediction: "
              f"{measurements.latency_summary()}; drawn (label, shown, ms): "
              f"{[(a, b, round(c)) for a, b, c in measurements.drawn]}")
    assert measurements.accuracy() >= MIN_ACCURACY, measurements.drawn


def test_the_page_shows_what_the_model_sees(page, pen_digits):
    driver.draw_digit(page, driver.choose_digits(pen_digits, 1)[3])
    driver.read_prediction(page)
    expect(page.get_by_text("What the model sees")).to_be_visible()
    for step in ("ink", "cropped", "fitted 20x20", "centred 28x28"):
        expect(page.get_by_test_id("stImageCaption").filter(has_text=step)).to_be_visible()
    expect(page.locator('img[alt^="The 28×28 image the model sees, read as"]')).to_be_visible()
    expect(page.locator("[data-testid=stVegaLiteChart]").first).to_be_visible()  # the probabilities


def test_a_thick_pen_on_a_small_digit_gets_a_hint(page, pen_digits):
    page.get_by_role("slider", name="Pen width").press("End")  # the thickest pen, 40 px
    expect(page.get_by_role("slider", name="Pen width")).to_have_value("40")
    digit = driver.choose_digits(pen_digits, 1)[4]
    driver.draw(page, canvas_points(digit, canvas_size=driver.CANVAS_SIZE, height_fraction=0.2, stroke_width=40))
    driver.read_prediction(page)
    expect(page.get_by_text("Strokes too thick for a digit this small")).to_be_visible()
    driver.clear(page)
    driver.draw_digit(page, digit)  # at the page's usual size, still with the thick pen
    driver.read_prediction(page)
    expect(page.get_by_text("Strokes too thick for a digit this small")).to_have_count(0)


def test_undo_clear_and_a_change_of_ink_keep_control_of_the_drawing(page, pen_digits):
    """The page's own buttons, always visible; the component's toolbar (shown on hover, with an Edit mode in
    which a stroke drags the drawing away) never shows."""
    assert driver.canvas_toolbar_shown(page) is False  # found, and hidden
    seven = next(d for d in pen_digits if d.label == 7 and len(d.strokes) == 2)  # a crossed 7: stem, then bar
    strokes = canvas_points(seven, canvas_size=driver.CANVAS_SIZE, stroke_width=driver.PEN_WIDTH)
    driver.draw(page, strokes)
    whole, _ = driver.read_prediction(page)
    page.get_by_text("Dark ink on white").click()  # the drawing stays, in the other ink
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(whole, timeout=30_000)
    expect(page.get_by_text(driver.HINT)).to_be_hidden()
    page.get_by_role("button", name="Undo", exact=True).and_(page.get_by_test_id("stBaseButton-secondary")).click()
    expect(page.locator('img[alt^="The 28×28 image the model sees"]')).not_to_have_attribute(
        "src", page.locator('img[alt^="The 28×28 image the model sees"]').get_attribute("src"), timeout=30_000)
    driver.clear(page)
    expect(page.get_by_test_id("stMetricLabel").filter(has_text="Prediction")).to_have_count(0)


def test_why_shows_what_drove_the_answer_and_follows_the_drawing(page, pen_digits, capsys):
    first, second = driver.choose_digits(pen_digits, 1)[2], driver.choose_digits(pen_digits, 1)[6]
    driver.draw_digit(page, first)
    read, _ = driver.read_prediction(page)
    page.get_by_text("Why? Show what the network looked at").click()
    heat_map = page.locator('img[alt^="Heat map of the ink that made the network read"]')
    # The first explanation of a model traces its graph (~1-3 s)
    expect(heat_map).to_have_attribute("alt", f"Heat map of the ink that made the network read {read}",
                                       timeout=30_000)
    expect(page.locator('img[alt^="Heat map of the ink that spoke for"]')).to_be_visible()
    page.get_by_text("What each layer sees").click()
    expect(page.locator('img[alt*="feature maps of layer"]').first).to_be_visible()
    page.get_by_text("The network, layer by layer").click()
    expect(page.get_by_text(re.compile(r"how many weights it learned; [\d,]+ in all"))).to_be_visible()
    latencies = []
    for digit in (second, first):  # it follows the drawing, and the answer still comes first
        driver.clear(page)
        driver.draw_digit(page, digit)
        read, ms = driver.read_prediction(page)
        latencies.append(round(ms))
        expect(heat_map).to_have_attribute("alt", f"Heat map of the ink that made the network read {read}")
    with capsys.disabled():
        print(f"\n[browser] mouse-up to prediction with Why? on (ms): {latencies}")


def test_writing_a_year_shows_the_number_and_each_digit(page, pen_digits):
    by_label = {label: driver.choose_digits(pen_digits, 1)[label] for label in range(10)}
    page.get_by_role("slider", name="Pen width").press("Home")  # the thinnest pen, for four digits on one canvas
    driver.draw_number(page, [by_label[d] for d in (2, 0, 2, 6)])
    text, _ = driver.read_prediction(page)
    assert text == "2026"
    expect(page.locator('img[alt^="Digit 4 of the number, as the model sees it: read as 6"]')).to_be_visible()
    expect(page.get_by_text("4 digits", exact=False).first).to_be_visible()


def test_a_scribble_is_not_read_as_a_digit(page):
    zigzag = np.array([[40 + 22 * i, 110 if i % 2 else 190] for i in range(11)], float)  # a w, wider than a digit
    driver.draw(page, [zigzag])
    text, _ = driver.read_prediction(page)
    assert text == "?"
    expect(page.get_by_text("This does not look like a digit.")).to_be_visible()


def test_at_phone_size_the_answer_and_probabilities_are_on_the_first_screen(server, chromium, pen_digits, tmp_path,
                                                                           capsys):
    """390x844 with touch: a finger draws; canvas, answer and probabilities fit the first screen."""
    phone = driver.open_page(chromium, server.url, device=driver.PHONE)
    try:
        digit = driver.choose_digits(pen_digits, 1)[4]
        driver.touch_draw(phone, canvas_points(digit, canvas_size=driver.CANVAS_SIZE, stroke_width=driver.PEN_WIDTH))
        text, ms = driver.read_prediction(phone)
        assert text == "4"
        # The first screen: the page and Streamlit's own scrolling container at their tops
        phone.evaluate("() => { window.scrollTo(0, 0); "
                       "document.querySelector('[data-testid=stMain]')?.scrollTo(0, 0); }")
        phone.wait_for_timeout(200)
        height = phone.viewport_size["height"]
        for what, box in (("canvas", phone.locator(driver.CANVAS).bounding_box()),
                          ("answer", phone.get_by_test_id("stMetric").first.bounding_box()),
                          ("probabilities", phone.get_by_test_id("stVegaLiteChart").first.bounding_box())):
            assert box["y"] >= 0 and box["y"] + box["height"] <= height, f"the {what} is below the first screen: {box}"
        phone.screenshot(path=tmp_path / "phone.png")
        assert driver.canvas_toolbar_shown(phone) is False
        strip = phone.locator('img[alt^="The drawing through each preprocessing step"]').bounding_box()
        assert strip["height"] < 100  # the five steps in one row, not stacked
        with capsys.disabled():
            print(f"\n[browser] phone 390x844, touch: prediction {round(ms)} ms after the finger lifted; "
                  f"screenshot {tmp_path / 'phone.png'}")
    finally:
        phone.context.close()


def test_text_and_controls_meet_wcag_aa_contrast_and_every_image_has_alternative_text(page, pen_digits):
    driver.draw_digit(page, driver.choose_digits(pen_digits, 1)[5])
    driver.read_prediction(page)
    page.get_by_text("Why? Show what the network looked at").click()
    expect(page.locator('img[alt^="Heat map of the ink that made the network read"]')).to_be_visible(timeout=30_000)
    ratios = driver.contrast(page, [
        ("caption", '[data-testid="stCaptionContainer"]', None),
        ("primary button", 'button[kind="primaryFormSubmit"] p', None),
        ("active tab", '[role="tab"][aria-selected="true"]', None),
        ("slider value", '[data-testid="stSliderThumbValue"]', '[data-testid="stSlider"]'),
        ("widget label", '[data-testid="stWidgetLabel"] p', None),
    ])
    kinds = {name for name, _, _ in ratios}
    assert kinds == {"caption", "primary button", "active tab", "slider value", "widget label"}, kinds
    low = [(name, text, round(r, 2)) for name, text, r in ratios if r < 4.5]
    assert not low, f"below WCAG AA's 4.5:1: {low}"
    page.get_by_role("tab", name="Look inside").click()
    expect(page.locator('img[alt^="A test "]').first).to_be_visible(timeout=30_000)  # the gallery of mistakes
    images = page.locator("img")
    assert images.count() > 10
    assert all((images.nth(i).get_attribute("alt") or "").strip() for i in range(images.count()))


def test_a_picture_of_a_digit_is_read_exactly_as_the_library_reads_it(page, model_store, handwriting_dir, tmp_path):
    """A scan of ink on paper (a CVL writer never trained on) and a phone-like JPEG, uploaded instead of drawn."""
    from PIL import Image, ImageFilter

    from mnist_core.handwriting import load_cvl
    from mnist_core.predictor import Predictor
    from mnist_core.preprocessing import read_image

    images, labels, _ = load_cvl(handwriting_dir / "cvl", "valid")
    scan = tmp_path / "scan.png"
    Image.fromarray(images[int(np.flatnonzero(labels == 7)[0])]).save(scan)
    # Dark ink on slightly uneven grey paper, enlarged, blurred, as a JPEG (stronger gradients of light:
    # tests/test_preprocessing.py and benchmarks/bench_lighting.py).
    photo = tmp_path / "photo of paper.jpg"
    paper = Image.fromarray(images[int(np.flatnonzero(labels == 4)[0])]).convert("L").resize((400, 460))
    shade = Image.linear_gradient("L").resize((400, 460)).point(lambda v: 170 + v * 16 // 255)
    Image.composite(Image.new("L", (400, 460), 40), shade, paper.point(lambda v: 255 - v)).filter(
        ImageFilter.GaussianBlur(1.5)).save(photo, quality=80)
    predictor = Predictor.load("default", ModelStore(model_store))
    for path in (scan, photo):
        expected = predictor.predict_number(read_image(path)).number
        assert expected is not None  # a digit the library reads
        page.locator("[data-testid=stMain] input[type=file]").set_input_files(path)
        expect(page.get_by_text(f"Reading your picture {path.name}")).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id("stMetricValue").first).to_have_text(expected, timeout=30_000)
    page.get_by_role("button", name=f"Remove {photo.name}").click()
    expect(page.get_by_text(driver.HINT)).to_be_visible(timeout=30_000)  # the (empty) canvas is read again


# --- training and uploading from the sidebar ------------------------------------------------------------------


def test_training_in_one_session_while_another_draws(server, chromium, pen_digits):
    """Alice trains a tiny model; meanwhile Bob's training waits in the queue (he cancels it), and he still draws
    and gets predictions."""
    alice = driver.open_page(chromium, server.url)
    bob = driver.open_page(chromium, server.url)
    try:
        driver.draw_digit(alice, driver.choose_digits(pen_digits, 1)[3])  # the drawing her training watches
        driver.read_prediction(alice)
        alice.get_by_label("Name of the new model", exact=True).fill("tiny-browser")
        # Long enough (~10 s here) that Bob surely draws while it runs, short enough to wait for.
        alice.get_by_label("Epochs", exact=True).fill(str(TRAINING_EPOCHS))
        sidebar_button(alice, "Train").click()
        expect(alice.locator(f'{SIDEBAR} [data-testid="stProgress"]')).to_be_visible(timeout=30_000)
        progress = re.compile(rf"Epoch \d+/{TRAINING_EPOCHS} · batch \d+/\d+ · .* left")
        expect(alice.locator(SIDEBAR).get_by_text(progress)).to_be_visible(timeout=60_000)

        expect(alice.get_by_text("as the network reads it after each epoch")).to_be_visible(timeout=60_000)
        expect(alice.locator('img[alt="The first convolution layer\'s filters as small pictures"]')).to_be_visible()
        alice.get_by_role("tab", name="Look inside").click()  # where the live curves have room
        expect(alice.get_by_text("Training tiny-browser, live")).to_be_visible(timeout=30_000)
        live = alice.get_by_role("tabpanel").locator('[data-testid="stHorizontalBlock"]').filter(
            has=alice.locator('[data-testid="stVegaLiteChart"]')).first
        boxes = [c.bounding_box() for c in live.locator('[data-testid="stVegaLiteChart"]').all()]
        assert len(boxes) == 2 and all(b["width"] > 300 for b in boxes), boxes  # loss and accuracy, side by side
        bob.get_by_label("Name of the new model", exact=True).fill("bobs-model")
        sidebar_button(bob, "Train").click()
        expect(bob.get_by_text("Waiting: bobs-model")).to_be_visible()  # queued behind hers, not refused
        expect(bob.get_by_text(re.compile(r"^Number 1 in the queue;"))).to_be_visible()
        sidebar_button(bob, "Cancel").click()
        expect(bob.get_by_text("Training bobs-model cancelled before it started")).to_be_visible()
        digit = driver.choose_digits(pen_digits, 1)[7]
        driver.draw_digit(bob, digit)
        text, _ = driver.read_prediction(bob)
        assert text.isdigit()
        expect(alice.get_by_text(re.compile(r"^Trained tiny-browser"))).to_have_count(0)  # still training

        expect(alice.get_by_text(re.compile(r"^Trained tiny-browser in .*: test error [\d.]+% on mnist-2k.npz "
                                            r"\(500 images\)"))).to_be_visible(timeout=300_000)
        expect(alice.locator(f'{SIDEBAR} [data-testid="stProgress"]')).to_have_count(0)
        assert re.fullmatch(r"tiny-browser · [\d.]+% test error · yours", active_model(alice))
        alice.get_by_role("tab", name="Look inside").click()
        expect(alice.get_by_text("Model “tiny-browser”", exact=True)).to_be_visible()  # the Look inside heading
        # and the line under the title says what now reads her drawings
        expect(alice.get_by_text(re.compile(r"^Model “tiny-browser” \(a “fast” network, trained on"))).to_be_visible()
        assert active_model(bob).startswith("default")  # Bob's choice is his own
    finally:
        alice.context.close()
        bob.context.close()


def test_a_malformed_csv_upload_is_refused_with_the_problem(page, mnist, tmp_path):
    header = ",".join(["label", *(f"pixel{i}" for i in range(784))])
    rows = [",".join(map(str, [int(y), *x.ravel().tolist()])) for x, y in zip(mnist.x_train[:50], mnist.y_train[:50],
                                                                               strict=True)]
    rows[2] = "12" + rows[2][1:]  # a label that is not a digit, on the file's 4th line
    path = tmp_path / "bad-labels.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    page.locator(f'{SIDEBAR} input[type="file"]').set_input_files(path)
    expect(page.get_by_text("bad-labels.csv", exact=True)).to_be_visible()
    sidebar_button(page, "Train").click()
    expect(page.get_by_text("bad-labels.csv: row 4, column 'label': 12 is not a digit 0-9")).to_be_visible()
    expect(page.locator(f'{SIDEBAR} [data-testid="stProgress"]')).to_have_count(0)


def test_a_model_trained_on_an_uploaded_csv_is_named_by_the_users_file(page, mnist, model_store, tmp_path):
    header = ",".join(["label", *(f"pixel{i}" for i in range(784))])
    rows = [",".join(map(str, [int(y), *x.ravel().tolist()])) for x, y in zip(mnist.x_train[:1200],
                                                                               mnist.y_train[:1200], strict=True)]
    path = tmp_path / "our-class.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    page.locator(f'{SIDEBAR} input[type="file"]').set_input_files(path)
    expect(page.get_by_text("our-class.csv", exact=True)).to_be_visible()
    driver.press_train(page, "from-our-class", 1)
    done = page.locator(SIDEBAR).get_by_text("Trained from-our-class in")
    expect(done).to_be_visible(timeout=300_000)
    assert "on our-class.csv (200 images)" in done.inner_text()  # the last sixth: its test set
    assert "upload-" not in page.locator(SIDEBAR).inner_text()
    stored = ModelStore(model_store).inspect("from-our-class").card.test_set.path
    assert Path(stored).name.startswith("upload-") and Path(stored).exists()  # kept: it is the model's test set


FOCUSED = """() => { const e = document.activeElement;
  return e ? (e.getAttribute('aria-label') || e.innerText || '').replace(/\\s+/g, ' ').trim().slice(0, 60) : ''; }"""


def tab_through(page, presses: int = 120) -> list[str]:
    """What Tab focuses, press after press, from the top of the page: each control's accessible name."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    names = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        names.append(page.evaluate(FOCUSED))
    return names


def test_every_control_is_reachable_and_usable_by_keyboard(page, pen_digits):
    """Tab reaches every control of the page; the keyboard alone switches tabs, ink, and labels a drawing. (The
    canvas needs a pointer: a picture upload, also reached by Tab, is drawing's keyboard alternative.)"""
    driver.draw_digit(page, driver.choose_digits(pen_digits, 1)[3])
    text, _ = driver.read_prediction(page)
    order = tab_through(page)
    reached = set(order)
    expected = {"Active model", "Start from", "Name of the new model", "Architecture", "Epochs", "Batch size",
                "Augmentation", "Held out for validation", "play_arrow Train", "edit Draw", "Pen width",
                "Dark ink on white", "Why? Show what the network looked at", "undo Undo", "delete Clear",
                "check Right", "3"}
    assert expected <= reached, expected - reached
    assert order.count("upload Upload") >= 2  # the training form's CSV and the picture of a digit, each reached
    # each says its own limit, the page's: 20 MB for a picture, 200 MB for a CSV
    expect(page.get_by_text(re.compile(r"^20MB per file • PNG"))).to_be_visible()
    expect(page.locator(SIDEBAR).get_by_text(re.compile(r"^200MB per file • CSV"))).to_be_visible()

    # Space flips the ink, and the drawing stays (read the same).
    page.get_by_role("switch", name="Dark ink on white").focus()
    page.keyboard.press("Space")
    expect(page.get_by_role("switch", name="Dark ink on white")).to_be_checked()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(text, timeout=30_000)
    # Enter on "It's a" 3 keeps the drawing, as a click does; the arrow keys move between the tabs.
    page.locator(".st-key-label_row").get_by_role("button", name=text, exact=True).focus()
    page.keyboard.press("Enter")
    page.get_by_text(f"Kept as a {text} (").first.wait_for(timeout=20_000)
    page.get_by_role("tab").first.focus()  # Draw
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(page.get_by_role("tab", name="My drawings")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("1 drawing of yours")).to_be_visible(timeout=30_000)
