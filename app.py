"""Handwritten digits: draw one and see it recognised as you draw; train models; look inside them.

    streamlit run app.py        (or: make run)

The page only lays out widgets; the work is done by mnist_core. Models and the
training runner are shared by every session of the server (st.cache_resource);
each user's active model and drawing are their own (st.session_state).
"""

from __future__ import annotations

import streamlit as st

# First, something to see: the libraries below take ~1 s to import and a model ~3 s more to load
# (the imports after this are E402 on purpose; pyproject.toml lets app.py do it).
st.set_page_config(page_title="Digit recogniser", page_icon=":material/draw:", layout="wide")
# On a phone, less room above the canvas: the answer must fit on the first screen under it.
st.html("""<style>@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-top: 3.75rem; padding-bottom: 2rem; }
  h1 { font-size: 1.25rem !important; padding: 0 !important; }
  [data-testid="stCaptionContainer"] { font-size: 0.8rem; line-height: 1.35; }
  [data-testid="stHorizontalBlock"] { gap: 0.5rem; }
  [data-testid="stTabs"] [role="tablist"] { margin-bottom: -0.5rem; }
}</style>""")
# The canvas component's own toolbar (in its shadow root, shown on hover) has an "Edit" mode in which the next
# stroke drags the drawing off the canvas; the page's own Undo and Clear replace it, so it is hidden.
st.html("""<script>(() => {
  if (window.__hideCanvasToolbar) return;
  window.__hideCanvasToolbar = true;
  let pending = false;
  const hide = () => {
    pending = false;
    for (const toolbar of document.querySelectorAll("*")) {
      const root = toolbar.shadowRoot;
      if (root && root.querySelector(".dc-toolbar") && !root.querySelector("style[data-page]")) {
        const style = document.createElement("style");
        style.dataset.page = "no-toolbar";
        style.textContent = ".dc-toolbar { display: none !important; }";
        root.appendChild(style);
      }
    }
  };
  const soon = () => { if (!pending) { pending = true; requestAnimationFrame(hide); } };
  new MutationObserver(soon).observe(document.body, {childList: true, subtree: true});
  document.addEventListener("pointerover", soon, true);  // the toolbar shows on hover: hidden before it can
  hide();
})();</script>""", unsafe_allow_javascript=True, width=1)
st.title(":material/draw: Handwritten digit recogniser")
subtitle = st.empty()  # what reads the drawings, once the model is known (the last step of a run)
subtitle.caption(st.session_state.get("subtitle", "Starting: loading the libraries and the model…"))

from typing import TYPE_CHECKING

from streamlit_drawable_canvas import st_canvas

from mnist_core import pictures
from mnist_core.data import DataError
from mnist_core.preprocessing import ImageError, read_image_bytes, read_png
from page import display
from page.drawings_panel import label_controls, label_notice, my_drawings
from page.models_panel import model_selector
from page.resources import (
    active_predictor,
    freeze_long_lived_objects,
    load_test_set,
    models_dir,
    training_runner,
    user,
)
from page.training_panel import POLL_SECONDS, live_training, polling, training_form, training_status

if TYPE_CHECKING:  # TensorFlow loads (~3 s) only when a model does, after the page is on screen
    import numpy as np

    from mnist_core.explain import Explanation
    from mnist_core.predictor import NumberReading, Prediction, Predictor

CANVAS_SIZE = 300
# The canvas sends a PNG drawn at the screen's device pixel ratio (2 on most phones, 3-4 on a few): one larger
# than this is refused from its header, not decoded. The browser is the client's: it can send any PNG.
CANVAS_MAX_SIDE = 4 * CANVAS_SIZE
MAX_PICTURE_MB = 20  # an uploaded picture of a digit (a phone's photo is 2-8 MB)


# --- Draw ---------------------------------------------------------------------------------


@st.fragment
def draw() -> None:
    """The canvas and what the model makes of it; reruns on its own at every stroke."""
    # Two rows of two columns: on a phone, where columns stack, the canvas comes first and the answer right
    # under it, then the pen and the steps, then "Why?"; on a desktop the answer is beside the canvas.
    canvas_area, answer_area = st.columns([5, 6], gap="large")
    controls_area, why_area = st.columns([5, 6], gap="large")
    with controls_area:
        pen, ink = st.columns([3, 2], vertical_alignment="center")  # shown under the canvas, read before it
        width = pen.slider("Pen width", min_value=6, max_value=40, value=20, key="pen_width")
        dark_ink = ink.toggle("Dark ink on white", key="dark_ink", on_change=recolour_drawing)
        picture = st.file_uploader(
            "Or read a picture of a digit", type=["png", "jpg", "jpeg", "webp", "bmp"], key="digit_picture",
            max_upload_size=MAX_PICTURE_MB,  # the widget then says this limit, and the browser keeps to it
            help="A photo or a scan of a digit on paper, or any image of one: read exactly as a drawing is. "
                 f"Up to {MAX_PICTURE_MB} MB. While it is here the canvas is not read; remove it to draw again.")
        steps_area = st.container()
    with canvas_area:
        canvas = st_canvas(
            stroke_width=width,
            stroke_color=ink_colour(dark_ink),
            background_color="#ffffff" if dark_ink else "#000000",
            width=CANVAS_SIZE, height=CANVAS_SIZE, initial_drawing=st.session_state.get("canvas_restore"),
            update_streamlit=True, return_image_data=True, key="canvas",
        )
        st.session_state.canvas_objects = (canvas.json_data or {}).get("objects", [])
        buttons = st.container(horizontal=True)  # one row, on a phone too (columns would stack)
        buttons.button("Undo", icon=":material/undo:", width="stretch", on_click=restore_drawing, args=(-1,),
                    disabled=not st.session_state.canvas_objects, help="Take back the last stroke")
        buttons.button("Clear", icon=":material/delete:", width="stretch", on_click=restore_drawing, args=(0,),
                     disabled=not st.session_state.canvas_objects, help="Start again on an empty canvas")
    predictor = active_predictor()
    if predictor is None:
        with answer_area:
            no_model_help()
        return
    with controls_area if picture is not None else canvas_area:  # where a refusal is said
        drawing = read_picture(picture) if picture is not None else read_canvas(canvas)
    label_notice()
    reading = predictor.predict_number(drawing) if drawing is not None else None
    drawn = reading is not None and bool(reading.digits)
    one = reading.digits[0] if drawn and len(reading.digits) == 1 and not reading.not_a_digit else None
    st.session_state.drawing = one.image if one is not None else None  # what a training started now will watch
    with answer_area:  # first: the answer reaches the browser before the pictures of the steps
        show_answer(reading if drawn else None)
        if drawn and len(reading.digits) == 1 and picture is None and drawing is not None:
            d = reading.digits[0]  # also when it is "not a digit": the user may know better (a continental 1)
            label_controls(canvas.image_bytes, d.digit, d.probabilities, predictor.name,
                           answered=not reading.not_a_digit, clear=lambda: restore_drawing(0))
        # Always shown, so that the choice survives a cleared canvas (a widget not drawn loses its state).
        explain = st.toggle("Why? Show what the network looked at", key="why",
                            help="Which ink drove the answer, and what each layer made of your drawing")
    with steps_area:
        if one is not None:
            st.caption("**What the model sees**, step by step")
            st.image(display.steps_strip(one.steps), caption=" → ".join(one.steps),
                     alt=f"The drawing through each preprocessing step, left to right: {', '.join(one.steps)}")
    if explain and one is not None:  # last: the answer and the steps are already on their way
        with why_area:
            why(predictor.explain(drawing))
    elif explain and drawn:
        why_area.caption("“Why?” explains one digit at a time: draw a single digit to see it.")


def ink_colour(dark_ink: bool) -> str:
    return "#111111" if dark_ink else "#ffffff"


def restore_drawing(keep: int | None = None, recolour: bool = False) -> None:
    """Redraw the canvas with its strokes but the last (``keep=-1``), none (``keep=0``), or all in the other
    ink (``recolour``): the canvas then sends the new drawing, read as any stroke is. A counter makes each
    request new, so that two clears in a row both take effect."""
    state = st.session_state
    objects = list(state.get("canvas_objects", []))
    if keep is not None:
        objects = objects[:keep] if keep else []
    if recolour:
        objects = [{**o, "stroke": ink_colour(state.dark_ink)} if "stroke" in o else o for o in objects]
    state.canvas_restores = state.get("canvas_restores", 0) + 1
    state.canvas_restore = {"objects": objects, "restore": state.canvas_restores}


def recolour_drawing() -> None:
    """The ink was switched: keep the drawing, in the new ink on the new background."""
    restore_drawing(recolour=True)


def read_canvas(canvas) -> np.ndarray | None:
    """The canvas' drawing, decoded here rather than by the component (canvas.image_data): its PNG's header is
    checked first. None when nothing was sent, or when what was sent is refused (said under the canvas)."""
    try:
        png = canvas.image_bytes
        if png is not None:
            return read_png(png, max_width=CANVAS_MAX_SIDE, max_height=CANVAS_MAX_SIDE, name="the canvas' image")
    except (ValueError, AttributeError) as exc:  # an ImageError, or a value that is no base64 data URL at all
        reason = exc if isinstance(exc, ImageError) else "the canvas sent something that is not a PNG data URL"
        st.warning(f"This drawing was not read: {display.escape_markdown(reason)}", icon=":material/warning:")
    return None


def read_picture(upload) -> np.ndarray | None:
    """An uploaded picture of a digit, or None with the reason it cannot be read."""
    data = upload.getvalue()
    try:
        if len(data) > MAX_PICTURE_MB * 1024 * 1024:
            raise ImageError(f"{upload.name}: {len(data) / 1024 / 1024:.0f} MB, more than the {MAX_PICTURE_MB} MB "
                             "a picture may be")
        picture = read_image_bytes(data, upload.name)
    except ImageError as exc:
        st.warning(f"This picture was not read: {display.escape_markdown(exc)}", icon=":material/warning:")
        return None
    st.caption(f"Reading your picture **{display.escape_markdown(upload.name)}**; remove it to draw again.")
    return picture


def why(explanation: Explanation) -> None:
    """The saliency of the answer and of the runner-up, each convolution's feature maps, the layers."""
    e = explanation
    top, second = st.columns(2)
    top.image(pictures.heat_map(e.image, e.saliency), width="stretch",
              caption=f"What made it a {e.digit}", alt=f"Heat map of the ink that made the network read {e.digit}")
    second.image(pictures.heat_map(e.image, e.runner_up_saliency), width="stretch",
                 caption=f"What spoke for {e.runner_up}, the runner-up ({e.probabilities[e.runner_up]:.0%})",
                 alt=f"Heat map of the ink that spoke for {e.runner_up}")
    st.caption("The brighter a pixel, the more its ink raised that digit's probability; dark ink did not "
               "matter for it. Measured on this drawing by the loaded model (integrated gradients: wiping the "
               "brightest ink lowers the answer's probability far more than wiping as much ink at random).")
    with st.expander("What each layer sees", icon=":material/layers:"):
        st.caption(f"The feature maps of {display.escape_markdown(e.network)}: each small square is one filter's "
                   "response to your drawing. Early layers find strokes and edges; later ones, smaller and "
                   "more numerous, respond to parts of digits.")
        for layer in e.layers:
            if layer.feature_maps is not None:
                st.image(pictures.grid(layer.feature_maps, scale=max(2, 56 // layer.feature_maps.shape[0])),
                         caption=display.feature_map_caption(layer),
                         alt=f"The {layer.feature_maps.shape[-1]} feature maps of layer {layer.name}")
    with st.expander("The network, layer by layer", icon=":material/account_tree:"):
        st.dataframe(display.layers_frame(e.layers), hide_index=True, width="stretch")
        st.caption("What each layer hands on (height × width × channels) and how many weights it learned; "
                   f"{sum(layer.parameters for layer in e.layers):,} in all.")


def show_answer(reading: NumberReading | None) -> None:
    """The answer to a drawing: one digit, a number of several, or "not a digit" (the guess kept aside)."""
    if reading is None:
        st.info("**Draw a digit** in the box, large and centred, or a number of a few digits side by side. "
                "The prediction updates as you draw; Undo and Clear are under the box.",
                icon=":material/draw:")
    elif reading.not_a_digit:
        st.metric("Prediction", "?", delta="does not look like a digit", delta_color="gray", delta_arrow="off")
        st.warning(f"**This does not look like a digit.** A network trained only on digits answers something "
                   f"for anything; here it would have said **{reading.guess}**, but a separate check found "
                   "no digit it could read. Try a clearer digit.", icon=":material/help:")
    elif len(reading.digits) == 1:
        show_prediction(reading.digits[0])
    else:
        show_number(reading)


def show_number(reading: NumberReading) -> None:
    """Several digits read left to right: the number, and each digit as the model saw it, with its probabilities."""
    digits = reading.digits
    unsure = [d for d in digits if not d.sure]
    st.metric("Prediction", reading.number, delta=f"{len(digits)} digits" + (
        f", {len(unsure)} not sure" if unsure else ", each sure"), delta_color="orange" if unsure else "green",
        delta_arrow="off")
    st.image([display.enlarge(d.image, 3, grid=False) for d in digits],
             caption=[f"{d.digit} ({d.confidence:.0%})" for d in digits],
             alt=[f"Digit {i + 1} of the number, as the model sees it: read as {d.digit}"
                  for i, d in enumerate(digits)])
    with st.expander("Each digit's probabilities"):
        for i, d in enumerate(digits):
            st.caption(f"Digit {i + 1}: {d.digit}")
            st.vega_lite_chart(spec=display.probability_chart(d.probabilities, height=140), width="stretch")


def show_prediction(prediction: Prediction) -> None:
    """One digit: the answer and how sure, the ten probabilities, then the 28x28 image the model saw
    (in that order, so that on a phone the answer and its probabilities come first)."""
    confidence = f"{prediction.confidence:.0%} confident"
    st.metric("Prediction", prediction.digit, delta=confidence if prediction.sure else f"not sure ({confidence})",
              delta_color="green" if prediction.sure else "orange", delta_arrow="off")
    if not prediction.sure:
        digit, p = display.runner_up(prediction.probabilities)
        st.warning(f"**Not sure.** It could also be a **{digit}** ({p:.0%}). Try writing it larger or clearer.")
    if prediction.thick_strokes:
        st.warning("**Strokes too thick for a digit this small:** they fill its loops and gaps. "
                   "Draw it larger or choose a thinner pen.", icon=":material/line_weight:")
    st.vega_lite_chart(spec=display.probability_chart(prediction.probabilities, height=120), width="stretch")
    st.image(display.enlarge(prediction.image, 5), caption="The 28×28 image the model sees",
             alt=f"The 28×28 image the model sees, read as {prediction.digit}")


def no_model_help() -> None:
    st.info(
        f"**There is no model to recognise digits with yet** (none usable in `{models_dir()}`).\n\n"
        "Train one with the form in the sidebar: the *quick* preset trains in about 10 s on all of MNIST, "
        "and the model becomes the active one when it is done. Or, in a terminal:\n\n"
        "```\npython -m mnist_core train --preset quick --name default\n```",
        icon=":material/model_training:",
    )



# --- Look inside --------------------------------------------------------------------------


def look_inside(predictor: Predictor) -> None:
    card = predictor.card
    st.subheader(f"Model “{display.escape_markdown(predictor.name)}”")
    a, b, c, d = st.columns(4)
    a.metric("Test error", f"{card.test_error:.2f}%" if card.test_error is not None else "—",
             help=f"Measured on {display.escape_markdown(display.test_set_name(card))}")
    b.metric("Architecture", display.escape_markdown(card.architecture))  # the value is Markdown; the card's text
    c.metric("Parameters", f"{card.parameters:,}")
    d.metric("Training time", display.format_duration(card.training_seconds))

    st.markdown("#### Training curves")
    frame = display.history_frame(card.history)
    if len(frame):
        loss, accuracy = st.columns(2)
        loss.altair_chart(display.curve_chart(frame, "loss"), width="stretch")
        accuracy.altair_chart(display.curve_chart(frame, "accuracy"), width="stretch")
    else:
        st.caption("This model's card holds no training history.")

    matrix, per_class = st.columns([1, 1], gap="large")
    with matrix:
        st.markdown("#### Confusion matrix")
        if card.confusion:
            st.altair_chart(display.confusion_chart(card.confusion))
    with per_class:
        st.markdown("#### Error per digit")
        if card.per_class_error:
            st.altair_chart(display.per_class_chart(card.per_class_error), width="stretch")

    st.markdown("#### Misclassified test digits")
    misclassified(predictor)

    st.markdown("#### Model card")
    st.markdown("\n".join(f"- **{k}:** {display.escape_markdown(v)}" for k, v in display.card_facts(card).items()))
    st.caption("Made with:")
    st.code(card.command or "(not recorded)", language="bash", wrap_lines=True)


def misclassified(predictor: Predictor) -> None:
    """A gallery of test digits the model got wrong, with true and predicted labels."""
    card = predictor.card
    if not card.misclassified:
        st.caption("None: every test digit was recognised." if card.confusion else "Not recorded in the card.")
        return
    source = card.test_set.path
    try:
        if source is None:
            raise DataError("its card does not say where it is")
        x_test, y_test, sha256 = load_test_set(source)
    except DataError as exc:
        st.warning("The test set is not reachable from this server, so its digits cannot be shown: "
                   + display.escape_markdown(exc))
        return
    if sha256 != card.test_set.sha256 or max(card.misclassified) >= len(x_test):
        st.warning(f"The test set at {display.escape_markdown(source)} has changed since this model was measured.")
        return
    shown = card.misclassified[:display.GALLERY_SIZE]
    predicted = predictor.probabilities(x_test[shown]).argmax(axis=1)
    which = "all" if len(shown) == len(card.misclassified) else f"the first {len(shown)}"
    st.caption(f"{len(card.misclassified):,} of {len(x_test):,} test digits are wrong; {which} shown as "
               "*true → predicted*.")
    st.image([display.enlarge(x_test[i], 3, grid=False) for i in shown],
             caption=[f"{y_test[i]} → {p}" for i, p in zip(shown, predicted, strict=True)],
             alt=[f"A test {y_test[i]} the model read as {p}" for i, p in zip(shown, predicted, strict=True)])


# --- the page -------------------------------------------------------------------------------

user()  # before anything else reads who this is
# "My drawings" is drawn only while open (the tab reruns the page when chosen): a drawing labelled on the
# canvas, whose fragment reruns alone, is then in it.
draw_tab, inside_tab, drawings_tab = st.tabs(
    [":material/edit: Draw", ":material/insights: Look inside", ":material/photo_library: My drawings"],
    key="tab", on_change="rerun")
with draw_tab:
    draw()

runner = training_runner(models_dir())
with st.sidebar:
    model_selector()
    st.divider()
    st.header("Train a model")
    st.fragment(run_every=polling(runner))(training_status)(runner)
    training_form(runner)

with inside_tab:
    st.fragment(run_every=POLL_SECONDS if polling(runner) == POLL_SECONDS else None)(live_training)(runner)
    predictor = active_predictor()
    # Kept as shown (escaped), so that the next run's first paint shows the same text before this line replaces it.
    active_card = predictor.card if predictor is not None else None
    st.session_state.subtitle = display.escape_markdown(display.subtitle(active_card))
    subtitle.caption(st.session_state.subtitle)
    if predictor is None:
        no_model_help()
    else:
        look_inside(predictor)
        freeze_long_lived_objects()  # once per server, after the first page is out: it takes ~0.2 s

if drawings_tab.open:
    with drawings_tab:
        my_drawings(runner, predictor.name if predictor is not None else None)
