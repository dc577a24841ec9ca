"""What every session of the server shares (models, the store's listing, the training runner) and who the
user of this session is: Streamlit's caches and the session's state, used by ``app.py`` and the page's panels.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

import streamlit as st

from mnist_core import identity
from mnist_core.data import load_mnist
from mnist_core.store import DEFAULT_MODEL, ModelStore, ModelStoreError, StoredModel, default_models_dir
from page import display
from page.jobs import TrainingRunner
from page.ray_launcher import launcher_from_environment

if TYPE_CHECKING:
    from mnist_core.predictor import Predictor

KEY_PARAMETER = "me"  # the page link's personal key: ?me=KEY (mnist_core.identity)


def user() -> str:
    """This user's owner id. Their personal key lives in the page's link (``?me=KEY``), so a reload or a
    bookmark keeps their models and drawings; a visit without one gets a new key."""
    state = st.session_state
    if "user" not in state:
        key = st.query_params.get(KEY_PARAMETER)
        if not identity.is_key(key):
            key = identity.new_key()
        state.user_key, state.user = key, identity.owner_of(key)
    if st.query_params.get(KEY_PARAMETER) != state.user_key:
        st.query_params[KEY_PARAMETER] = state.user_key
    return state.user


# --- shared by every session ---------------------------------------------------------------


@st.cache_resource
def training_runner(models_dir: str) -> TrainingRunner:
    """The server's one training queue (page.jobs): every session submits to it. Its trainings run on the Ray
    cluster at ``$MNIST_RAY_ADDRESS`` if that is set (page.ray_launcher), else as local child processes."""
    return TrainingRunner(ModelStore(models_dir), launcher=launcher_from_environment())


@st.cache_resource(max_entries=6, show_spinner="Loading the model…")
def load_predictor(models_dir: str, name: str, version: str) -> Predictor:
    """Model ``name``, loaded once per server; ``version`` (its checksum) changes when it is retrained."""
    from mnist_core.predictor import Predictor

    predictor = Predictor.load(name, ModelStore(models_dir))
    # The page is usable meanwhile: with its stored LiteRT copy this takes ~10 ms, without one ~2 s (a conversion).
    threading.Thread(target=predictor.warm_up, name=f"warm-up-{name}", daemon=True).start()
    return predictor


@st.cache_resource
def freeze_long_lived_objects() -> None:
    """Hide what is alive once a model is loaded (TensorFlow, Keras, the model) from the garbage collector.

    After every run, even a fragment's, Streamlit calls Keras' ``clear_session()``, which runs a full
    garbage collection: with TensorFlow loaded that is ~200 ms of CPU holding the interpreter, after
    every stroke. Frozen objects are skipped, so it takes a millisecond. Done once per server: frozen
    objects are never freed.
    """
    gc.collect()
    gc.freeze()


@st.cache_data(max_entries=4, show_spinner=False)
def list_models(models_dir: str, fingerprint: tuple) -> list[StoredModel]:
    """The store's listing, read again only when a file in the folder changes (it hashes every model)."""
    return ModelStore(models_dir).list()


@st.cache_data(max_entries=2, show_spinner="Loading the test set…")
def load_test_set(source: str):
    """The test images, labels and checksum of an MNIST source."""
    data = load_mnist(source)
    return data.x_test, data.y_test, data.sha256


# --- the active model ------------------------------------------------------------------------


def models_dir() -> str:
    return str(default_models_dir())


def available_models() -> tuple[dict[str, tuple[StoredModel, str]], dict[str, str]]:
    """``usable`` (name -> (entry, version)) and ``broken`` (name -> reason) models of the store.

    A model that failed to load in this session counts as broken until its file changes.
    """
    folder = models_dir()
    unloadable = st.session_state.setdefault("unloadable", {})  # name -> (version, reason)
    usable, broken = {}, {}
    for entry in list_models(folder, display.folder_fingerprint(folder)):
        version = (entry.card.keras_sha256 or entry.card.created) if entry.card else ""
        if not entry.ok:
            broken[entry.name] = entry.problem
        elif unloadable.get(entry.name, ("", ""))[0] == version:
            broken[entry.name] = unloadable[entry.name][1]
        else:
            usable[entry.name] = (entry, version)
    return usable, broken


def active_predictor() -> Predictor | None:
    """This user's active model, loaded (default: ``default``); None if the store holds no usable model."""
    state = st.session_state
    usable, _ = available_models()
    if not usable:
        return None
    if state.get("switch_to") in usable:  # a training of this user has just finished
        state.model = state.pop("switch_to")
    if state.get("model") not in usable:  # a new session: the page's link may name the model (a reload keeps it)
        linked = st.query_params.get("model")
        state.model = linked if linked in usable else DEFAULT_MODEL if DEFAULT_MODEL in usable else next(iter(usable))
    if st.query_params.get("model") != state.model:
        st.query_params["model"] = state.model
    entry, version = usable[state.model]
    try:
        predictor = load_predictor(models_dir(), entry.name, version)
    except ModelStoreError as exc:
        state.unloadable[entry.name] = (version, str(exc))
        st.rerun()
    return predictor


