"""The sidebar's model panel: the active model, whose each model is (no personal data), and deleting one's own."""

from __future__ import annotations

import streamlit as st

from mnist_core.store import ModelStore, ModelStoreError, StoredModel
from page import display
from page.resources import available_models, models_dir, training_runner, user

YOURS, ANOTHER_USERS, OUTSIDE = "yours", "another user's", "shipped/command line"


def whose(entry: StoredModel, me: str) -> str:
    """Who trained a model, as the list says it: yours, another user's, or outside the page (no owner)."""
    owner = entry.card.owner if entry.card is not None else ""
    return YOURS if owner and owner == me else ANOTHER_USERS if owner else OUTSIDE


def model_selector() -> None:
    """The model selector (each model with its test error and whose it is), the broken models with the reason
    each cannot be used, and this user's models with a Delete each."""
    st.header("Model")
    usable, broken = available_models()
    me = user()
    if usable:
        st.selectbox(
            "Active model", list(usable), key="model",
            format_func=lambda n: f"{display.model_label(usable[n][0])} · {whose(usable[n][0], me)}",
            help="The shipped default and every model trained here, with the error measured on its test set and "
                 f"who trained it: {YOURS}, {ANOTHER_USERS}, or {OUTSIDE} (trained outside this page).",
        )
    else:
        st.info("No usable model yet: train one below.", icon=":material/model_training:")
    for name, problem in broken.items():
        st.warning(f"`{name}` is broken and cannot be used: {display.escape_markdown(problem)}",
                   icon=":material/warning:")
    your_models([name for name, (entry, _) in usable.items() if whose(entry, me) == YOURS])


def your_models(names: list[str]) -> None:
    """This user's models, each with Delete; a delete asks to be confirmed first."""
    state = st.session_state
    if notice := state.pop("models_notice", None):
        st.toast(notice)
    if not names:
        return
    with st.expander(f"Your models ({len(names)})", icon=":material/folder_open:",
                     expanded=state.get("confirm_delete") in names):
        for name in names:
            if state.get("confirm_delete") == name:
                st.warning(f"Delete `{name}` for good? Its files are removed; nobody can use it afterwards.",
                           icon=":material/delete_forever:")
                yes, no = st.columns(2)
                yes.button("Delete for good", key=f"delete-yes-{name}", type="primary", on_click=delete_model,
                           args=(name,), width="stretch")
                no.button("Keep it", key=f"delete-no-{name}", on_click=state.pop, args=("confirm_delete", None),
                          width="stretch")
            else:
                label, button = st.columns([3, 2], vertical_alignment="center")
                label.markdown(f"`{name}`")
                button.button("Delete", key=f"delete-{name}", icon=":material/delete:", width="stretch",
                              on_click=state.__setitem__, args=("confirm_delete", name),
                              help=f"Delete your model {name} (asks first)")
        if error := state.pop("delete_error", None):
            st.error(display.escape_markdown(error), icon=":material/error:")


def delete_model(name: str) -> None:
    """Delete this user's model ``name`` (confirmed), unless a queued or running training starts from it."""
    state = st.session_state
    state.pop("confirm_delete", None)
    runner = training_runner(models_dir())
    if name in runner.in_use()[1]:
        state.delete_error = (f"'{name}' is not deleted: a training in the queue starts from it. Delete it once "
                              "that training has ended.")
        return
    try:
        ModelStore(models_dir()).delete(name, user())
    except ModelStoreError as exc:
        state.delete_error = str(exc)
        return
    state.models_notice = f"Deleted {name}."
