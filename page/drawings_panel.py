"""Teach it your handwriting: label a drawing under its prediction, see and manage your drawings, and adapt
the active model to them with a fine-tune queued like any training (mnist_core.drawings, mnist_core.adapt)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import streamlit as st

from mnist_core.adapt import REPLAY
from mnist_core.drawings import MAX_PER_OWNER, DrawingStore, default_drawings_dir
from mnist_core.store import ModelOwnedError, ModelStoreError
from page import display
from page.jobs import QueueLimit, TrainingRunner, adapted_name, finetune_job
from page.resources import available_models, user
from page.training_panel import owned_message

GALLERY_SIZE = 30  # the newest drawings shown, each with its own Delete
GALLERY_COLUMNS = 6


def drawing_store() -> DrawingStore:
    """The server's drawings folder (``$MNIST_DRAWINGS_DIR``, else ``drawings/``)."""
    return DrawingStore(default_drawings_dir())


# --- under the prediction ---------------------------------------------------------------------------


def label_controls(png: bytes, predicted: int, probabilities, model: str, answered: bool,
                   clear: Callable[[], None]) -> None:
    """"Right" and "It's a 0-9" for the drawing on the canvas: one click keeps it, labelled, and clears the canvas.

    ``predicted``: what ``model`` read (its best guess, even when it said "not a digit"); ``answered``: whether
    it gave that as its answer, so that "Right" is offered only for an answer.
    """
    state = st.session_state
    if error := state.pop("label_error", None):
        st.warning(f"Not kept: {display.escape_markdown(error)}", icon=":material/warning:")
    if state.get("last_kept") == hashlib.sha256(png).hexdigest():  # the canvas has not sent its clearing yet
        return
    st.caption("**Teach it your handwriting:** say what this is; the drawing is kept (yours only, see *My "
               "drawings*) and the canvas clears for the next one.")
    row = st.container(horizontal=True, gap="small", key="label_row")
    keep = functools.partial(keep_drawing, png, predicted=predicted, probabilities=probabilities, model=model,
                             clear=clear)
    if answered:
        row.button("Right", icon=":material/check:", key="label_right", on_click=keep, args=(predicted,),
                   help=f"It is a {predicted}: keep it as one")
    row.markdown("or it's a…" if answered else "It's a…")
    for digit in range(10):
        row.button(str(digit), key=f"label_{digit}", on_click=keep, args=(digit,), help=f"It is a {digit}: keep it "
                   "as one")


def keep_drawing(png: bytes, label: int, *, predicted: int, probabilities, model: str,
                 clear: Callable[[], None]) -> None:
    """Keep the canvas' drawing as this user's ``label`` and clear the canvas, or say why it was not kept."""
    state = st.session_state
    try:
        drawing_store().add(user(), png, label, predicted=predicted, model=model,
                            probabilities=[float(p) for p in probabilities])
    except ValueError as exc:  # DrawingLimitError too: said under the prediction, the drawing stays on the canvas
        state.label_error = str(exc)
        return
    state.last_kept = hashlib.sha256(png).hexdigest()
    count = sum(drawing_store().counts(user()))
    verdict = "right" if label == predicted else f"read as {predicted}"
    state.label_notice = f"Kept as a {label} ({verdict}): you have {count} drawing{'s' * (count != 1)}."
    clear()


def label_notice() -> None:
    """Say, once, that the last labelled drawing was kept (a callback cannot: the fragment it runs in says it)."""
    if notice := st.session_state.pop("label_notice", None):
        st.toast(notice, icon=":material/bookmark_added:")


# --- the "My drawings" tab ---------------------------------------------------------------------------


def my_drawings(runner: TrainingRunner, active: str | None) -> None:
    """This user's drawings: how many of each digit, the newest with Delete each, downloads, Delete all; then
    "Adapt to my handwriting" for the active model."""
    state, store, me = st.session_state, drawing_store(), user()
    drawings = store.list(me)
    st.subheader("Your drawings")
    if notice := state.pop("drawings_notice", None):
        st.success(notice, icon=":material/check_circle:")
    if not drawings:
        st.info("**None yet.** Under each prediction, say whether it is right (*Right*, or *It's a…* the digit "
                "it is): the drawing is kept here, labelled. With a few of each digit you can adapt the model to "
                "your handwriting.", icon=":material/draw:")
    else:
        counts = store.counts(me)
        st.markdown(" · ".join(f"**{d}** × {n}" for d, n in enumerate(counts)))
        corrected = sum(d.corrected for d in drawings)
        st.caption(f"{len(drawings)} drawing{'s' * (len(drawings) != 1)} of yours ({corrected} the model misread), "
                   f"of the {MAX_PER_OWNER} one user may keep. They stay on this server, in your folder: nobody "
                   "else sees them, and your personal link (this page's address) brings them back.")
        gallery(store, me, drawings)
        downloads(store, me)
    adapt(runner, active, store, me, drawings)


def gallery(store: DrawingStore, me: str, drawings) -> None:
    shown = drawings[:GALLERY_SIZE]
    st.caption(f"The newest {len(shown)} of {len(drawings)}, each as *your label (what the model read)*:"
               if len(shown) < len(drawings) else "Each as *your label (what the model read)*:")
    for start in range(0, len(shown), GALLERY_COLUMNS):
        for column, drawing in zip(st.columns(GALLERY_COLUMNS), shown[start:start + GALLERY_COLUMNS], strict=False):
            read = "right" if not drawing.corrected else f"read {drawing.predicted}"
            column.image(store.image(me, drawing.id), width="stretch", caption=f"{drawing.label} ({read})",
                         alt=f"Your drawing of a {drawing.label}; the model read {drawing.predicted}")
            column.button("Delete", key=f"forget-{drawing.id}", icon=":material/delete:", width="stretch",
                          on_click=forget, args=(drawing.id,), help=f"Delete this drawing of a {drawing.label}")


def downloads(store: DrawingStore, me: str) -> None:
    state = st.session_state
    zip_file, csv_file, delete_all = st.columns(3)
    zip_file.download_button(
        "Download as folders (zip)", functools.partial(store.zip_bytes, me), file_name="my-drawings.zip",
        mime="application/zip", on_click="ignore", icon=":material/folder_zip:", width="stretch",
        help="One folder per digit, DIGIT/NAME.png: the layout of Keras' image_dataset_from_directory and of "
             "python -m mnist_core finetune --drawings")
    csv_file.download_button(
        "Download as CSV", functools.partial(store.csv_bytes, me), file_name="my-drawings.csv", mime="text/csv",
        on_click="ignore", icon=":material/table:", width="stretch",
        help="Kaggle's train.csv format (label, then 784 pixels), each drawing normalised to 28x28 as the page "
             "reads it: a class's files put together can be uploaded to the training form")
    if state.get("confirm_forget_all"):
        st.warning("Delete all your drawings for good?", icon=":material/delete_forever:")
        yes, no = st.columns(2)
        yes.button("Delete them all", type="primary", on_click=forget_all, width="stretch")
        no.button("Keep them", on_click=state.pop, args=("confirm_forget_all", None), width="stretch")
    else:
        delete_all.button("Delete all", icon=":material/delete_sweep:", width="stretch",
                          on_click=state.__setitem__, args=("confirm_forget_all", True), help="Asks first")


def forget(drawing_id: str) -> None:
    try:
        drawing_store().delete(user(), drawing_id)
    except KeyError:
        pass  # already gone (deleted from another tab): what the user asked for is true
    st.session_state.drawings_notice = "Deleted one drawing."


def forget_all() -> None:
    st.session_state.pop("confirm_forget_all", None)
    count = drawing_store().delete_all(user())
    st.session_state.drawings_notice = f"Deleted all {count} of your drawings."


# --- adapting -----------------------------------------------------------------------------------------


def adapt(runner: TrainingRunner, active: str | None, store: DrawingStore, me: str, drawings) -> None:
    """Fine-tune the active model (or, if it is an adaptation, the model it was adapted from) on this user's
    drawings, queued; what the adaptation in use measured; one click back to its base."""
    st.subheader("Adapt to my handwriting")
    usable, _ = available_models()
    card = usable[active][0].card if active in usable else None
    if card is not None and card.adaptation is not None:
        adapted(card, usable)
    if card is None:
        st.caption("There is no model to adapt yet.")
        return
    base = card.base_model.name if card.adaptation is not None and card.base_model else active
    if base not in usable:
        st.caption(f"This model was adapted from {base}, which is no longer here: it cannot be adapted again.")
        return
    drawn = sum(n > 0 for n in store.counts(me)) if drawings else 0
    name = adapted_name(base, me)
    st.caption(f"Fine-tunes **{display.escape_markdown(base)}** on your drawings, with {REPLAY:,} MNIST training "
               "digits mixed in so that it does not forget them. Of each digit you drew twice or more, a quarter "
               "(at least one) is held back and measured before and after. It waits in the training queue like "
               f"any training; its progress is in the sidebar. The new model, **{name}**, is yours and becomes "
               "your active model; adapting again replaces it.")
    reason = ("Label some drawings first." if not drawings else
              "Draw at least two different digits first: with one, it would learn to answer that digit to "
              "everything." if drawn < 2 else "")
    if st.button("Adapt to my handwriting", icon=":material/school:", type="primary", disabled=bool(reason),
                 help=reason or None):
        queue_adaptation(runner, base, store, me, name, len(drawings))
    if reason:
        st.caption(reason)
    if error := st.session_state.pop("adapt_error", None):
        st.error(display.escape_markdown(error), icon=":material/error:")


def adapted(card, usable) -> None:
    """What the active adaptation measured, and a button back to its base."""
    st.success(display.escape_markdown(display.adaptation_summary(card)), icon=":material/school:")
    base = card.base_model.name if card.base_model else None
    if base in usable:
        st.button(f"Switch back to {base}", icon=":material/undo:", on_click=st.session_state.__setitem__,
                  args=("model", base), help="Make the model it was adapted from your active model again")


def queue_adaptation(runner: TrainingRunner, base: str, store: DrawingStore, me: str, name: str, count: int) -> None:
    try:
        runner.submit(finetune_job(base, store.images_dir(me), name, me, count))
    except QueueLimit as exc:
        st.session_state.adapt_error = display.capitalised(str(exc))
    except ModelOwnedError as exc:
        st.session_state.adapt_error = owned_message(exc)
    except (ValueError, ModelStoreError) as exc:
        st.session_state.adapt_error = str(exc)
    else:
        st.session_state.drawings_notice = (f"Queued: {base} is adapted to your {count} drawings. Its progress is "
                                            "in the sidebar; when it is done it becomes your active model.")
    st.rerun()
