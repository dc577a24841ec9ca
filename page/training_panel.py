"""The sidebar's training panel: the form that queues a training, and this user's jobs: their place in the
queue and wait, their progress, how they ended."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from mnist_core import pictures
from mnist_core.architectures import ARCHITECTURES
from mnist_core.data import DataError
from mnist_core.settings import MAX_EPOCHS, PRESETS, TrainingSettings
from mnist_core.store import DEFAULT_MODEL, ModelOwnedError, ModelStore, ModelStoreError, check_name
from page import display
from page.jobs import JobStatus, QueueLimit, TrainingRunner, default_name, training_job
from page.resources import list_models, models_dir, user

POLL_SECONDS = 1.0  # how often a page watching a training asks for its progress
# How often a page whose user's job waits asks again: its place changes only when a job ends, and every poll of
# every waiting user costs the server (and their browser) a run, which a class of them would take from drawing.
QUEUED_POLL_SECONDS = 5.0
LIVE_POINTS = 300  # per-batch points kept for the live curves (every epoch's end is always shown)
BATCH_SIZES = [16, 32, 64, 128, 200, 256, 512]
FIRST_PRESET = "quick"  # what the training form shows at first
VALIDATION_SPLITS = [0.0, 0.05, 0.1, 0.2]
PAGE_VALIDATION = 0.1  # the validation split the form starts with, whatever the preset (the CLI's is the preset's)


# --- sidebar: training ----------------------------------------------------------------------


def training_form(runner: TrainingRunner) -> None:
    """A preset to start from, the training form; starts a training on submit, or says why it cannot."""
    state = st.session_state
    if "train_preset" not in state:
        state.train_preset = FIRST_PRESET
        apply_preset()
    st.selectbox("Start from", [*PRESETS, "custom"], key="train_preset", on_change=apply_preset,
                 help="Named settings (see the README); the fields below can then be changed.")
    preset = PRESETS.get(state.train_preset, TrainingSettings())
    if extras := display.settings_beyond_form(preset):
        st.caption(f"Also: {extras}.")
    with st.form("train", border=False, enter_to_submit=False):  # Enter in a field must not start a training
        name = st.text_input("Name of the new model", placeholder="e.g. my-cnn (default: ARCH-EPOCHSe-YOURS)",
                             help="Letters, digits, '-' and '_'. Training under the name of one of your models "
                                  "replaces it when (and only if) the training completes; other users' models "
                                  "are theirs. The default name ends with a code of yours, so it is yours alone.")
        st.selectbox("Architecture", list(ARCHITECTURES), key="train_architecture",
                     format_func=lambda a: ARCHITECTURES[a].label)
        st.number_input("Epochs", min_value=1, max_value=MAX_EPOCHS, key="train_epochs")
        st.select_slider("Batch size", BATCH_SIZES, key="train_batch_size")
        st.toggle("Augmentation", key="train_augment", help="Random rotation, shear, zoom, shift and stroke width "
                                                             "while training: slower, but better on drawings.")
        st.select_slider("Held out for validation", VALIDATION_SPLITS, key="train_validation",
                         format_func=lambda f: f"{f:.0%}" if f else "none",
                         help="This share of the training images is not trained on: the curves then show how "
                              "the model does on images it has not seen (validation), beside the ones it learns "
                              "from. A widening gap is overfitting.")
        st.caption(f"Data: MNIST from `{display.data_location()}`, or upload your own:")
        upload = st.file_uploader(
            "Kaggle-format CSV", type=["csv"], max_upload_size=display.MAX_UPLOAD_MB,
            help=f"A Kaggle Digit Recognizer train.csv (label,pixel0,…,pixel783), up to {display.MAX_UPLOAD_MB} MB. "
                 "The last sixth of its rows is held out as the test set.",
        )
        submitted = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:", width="stretch")
    st.caption(queue_summary(runner))
    if submitted:
        settings = dataclasses.replace(
            preset, architecture=state.train_architecture, epochs=int(state.train_epochs),
            batch_size=int(state.train_batch_size), augment=state.train_augment,
            validation_split=float(state.train_validation),
        )
        start_training(runner, name, settings, upload)


def apply_preset() -> None:
    """Fill the training form with the chosen preset's settings (the defaults for "custom")."""
    state = st.session_state
    preset = PRESETS.get(state.train_preset, TrainingSettings())
    state.train_architecture = preset.architecture
    state.train_epochs = preset.epochs
    state.train_batch_size = preset.batch_size if preset.batch_size in BATCH_SIZES else 128
    state.train_augment = preset.augment
    # On the page every preset shows validation curves: the split is the form's, stated in it.
    wanted = preset.validation_split or PAGE_VALIDATION
    state.train_validation = min(VALIDATION_SPLITS, key=lambda f: abs(f - wanted))


def start_training(runner: TrainingRunner, name: str, settings: TrainingSettings, upload) -> None:
    """Check the request, then queue it; any problem is shown in the sidebar."""
    data_path, started, me = None, False, user()
    try:
        settings.check()
        name = check_name(name.strip() or default_name(settings, me))
        if name == DEFAULT_MODEL and ModelStore().files(name).card.exists():
            raise ValueError(f"'{DEFAULT_MODEL}' is the shipped model and cannot be replaced from the page; "
                             "choose another name")
        data_path = None
        if upload is not None:
            with st.spinner(f"Checking {upload.name}…"):
                data_path, data = display.keep_upload(upload.name, upload.getvalue(), Path(models_dir()) / ".uploads")
            st.session_state.setdefault("upload_names", {})[str(data_path)] = upload.name  # for its messages
            settings.check(len(data.x_train))
        job = training_job(settings, name, data_path, owner=me, watch=st.session_state.get("drawing"))
        try:
            runner.submit(job)
        except Exception:
            for temporary in job.temporaries:  # the watched drawing's file: no job will remove it
                Path(temporary).unlink(missing_ok=True)
            raise
        started = True
    except QueueLimit as exc:
        st.warning(display.escape_markdown(display.capitalised(str(exc))), icon=":material/hourglass_top:")
    except ModelOwnedError as exc:
        st.error(display.escape_markdown(owned_message(exc)), icon=":material/lock:")
    except (ValueError, DataError, ModelStoreError) as exc:
        st.error(display.escape_markdown(exc), icon=":material/error:")
    else:
        st.rerun()
    finally:
        if data_path is not None:
            settle_upload(runner, data_path, started)


def owned_message(exc: ModelOwnedError) -> str:
    """The store's refusal in the page's words: whose the model is, never their owner id."""
    whose = "another user's model" if exc.owner else "a model trained outside this page (shipped or command line)"
    return f"'{exc.name}' is {whose}: only its owner can replace it. Choose another name."


def settle_upload(runner: TrainingRunner, path: Path, started: bool) -> None:
    """Keep an upload for the training it started, else delete it; then prune the uploads to their cap.

    Neither ever deletes a queued or running training's data; a model's test set goes only when the cap needs it.
    """
    in_use = sorted(runner.in_use()[0])
    folder = models_dir()
    tested = [e.card.test_set.path for e in list_models(folder, display.folder_fingerprint(folder)) if e.card]
    display.release_upload(path, started, in_use=[*in_use, *tested])
    if started:
        display.prune_uploads(path.parent, in_use=in_use, referenced=tested)


def queue_summary(runner: TrainingRunner) -> str:
    """The server's queue in one line, for everyone: how busy it is before pressing Train."""
    jobs = runner.jobs()
    running, waiting = sum(s.running for s in jobs), sum(s.queued for s in jobs)
    at_once = f"{runner.workers} at a time" if runner.workers > 1 else "one at a time"
    return (f"Trainings run {at_once} on this server, in the order asked, each user one running and one waiting; "
            f"now {running} running, {waiting} waiting.")


def polling(runner: TrainingRunner) -> float | None:
    """How often this page asks for news of its user's jobs: while one runs, while one waits, else never."""
    jobs = runner.jobs_of(user())
    if any(s.running for s in jobs):
        return POLL_SECONDS
    return QUEUED_POLL_SECONDS if any(s.queued for s in jobs) else None


def training_status(runner: TrainingRunner) -> None:
    """This user's jobs (polled): waiting (place, estimated wait, Cancel), running (progress, live curves, Stop),
    and how the last one ended."""
    state = st.session_state
    jobs = runner.jobs_of(user())
    active = {s.id: s.running for s in jobs if s.active}  # id -> running (else waiting)
    before = state.get("watching", {})
    ended = before.keys() - active.keys()
    state.watching = active
    if ended:  # a job we watched has just ended: the whole page shows it (its model, if done, becomes active)
        for s in jobs:
            if s.id in ended and s.state == "done":
                state.switch_to = s.name
        for job_id in ended:
            state.setdefault("live", {}).pop(job_id, None)
        st.rerun()
    if any(running and not before.get(job_id, True) for job_id, running in active.items()):
        st.rerun()  # a waiting job has started: the whole page runs again, to poll at the running pace
    for status in jobs:
        if status.running:
            show_running(runner, status)
        elif status.queued:
            show_queued(runner, status)
        else:
            show_outcome(status)


def show_queued(runner: TrainingRunner, status: JobStatus) -> None:
    st.markdown(f"**Waiting: `{status.name}`** · {display.escape_markdown(status.job.label)}")
    wait = status.wait_seconds
    estimate = (f"about {display.format_duration(wait)} to wait" if wait is not None else
                "the wait is not known yet: no training like it has finished on this server")
    st.caption(f"Number {status.position} in the queue; {estimate}. (Estimated from how long the last trainings "
               "with these settings took, and how far the ones running are.)")
    if st.button("Cancel", key=f"cancel-{status.id}", icon=":material/close:", width="stretch"):
        runner.cancel(status.id, owner=user())
        st.rerun()


def show_running(runner: TrainingRunner, status: JobStatus) -> None:
    state = st.session_state
    st.markdown(f"**{doing(status)} `{status.name}`** · {display.escape_markdown(status.job.label)}")
    p = status.progress
    st.progress(p.fraction_done if p else 0.0, text=display.progress_text(p) if p else "Starting: loading data…")
    reports = state.setdefault("live", {}).setdefault(status.id, [])
    if p is not None and (not reports or reports[-1] != p):
        reports.append(p)
        del reports[:-LIVE_POINTS]
    curves(status, st.container(), height=170)
    st.caption("Full size, side by side: the *Look inside* tab.")
    watching(status.epochs)
    if st.button("Stop", key=f"stop-{status.id}", icon=":material/stop:", width="stretch"):
        runner.cancel(status.id, owner=user())
        st.toast("Stopping after the current batch…")


def curves(status: JobStatus, where, height: int, columns: bool = False) -> None:
    """The running job's loss and accuracy, every report seen so far (the sidebar's, kept in the session)."""
    reports = st.session_state.get("live", {}).get(status.id, [])
    frame = display.live_frame(sorted({*reports, *status.epochs}, key=lambda r: (r.member, r.epoch, r.batch)))
    if not len(frame):
        return
    loss, accuracy = where.columns(2) if columns else (where, where)
    loss.altair_chart(display.curve_chart(frame, "loss", height=height), width="stretch")
    accuracy.altair_chart(display.curve_chart(frame, "accuracy", height=height), width="stretch")


def live_training(runner: TrainingRunner) -> None:
    """This user's running training, in the main area where its curves have room (polled while it runs)."""
    for status in runner.jobs_of(user()):
        if status.running:
            st.markdown(f"#### {doing(status)} `{status.name}`, live")
            st.caption(display.progress_text(status.progress) if status.progress else "Starting: loading data…")
            curves(status, st.container(), height=260, columns=True)


def in_users_words(text: str, status: JobStatus) -> str:
    """``text`` with the stored name of the job's uploaded data (``upload-1a2b….csv``, its path) replaced by the
    name of the file this user uploaded, so that every message names their file."""
    uploaded = st.session_state.get("upload_names", {}).get(status.job.data)
    if not uploaded:
        return text
    stored = Path(status.job.data)
    return text.replace(str(stored), uploaded).replace(stored.name, uploaded)


def show_outcome(status: JobStatus) -> None:
    if status.state == "done" and status.card.adaptation is not None:
        st.success(f"{display.escape_markdown(display.adaptation_summary(status.card))} It is now your active model.",
                   icon=":material/school:")
    elif status.state == "done":
        card = status.card
        st.success(f"Trained `{status.name}` in {display.format_duration(card.training_seconds)}: "
                   f"test error **{card.test_error:.2f}%** on "
                   f"{display.escape_markdown(in_users_words(display.test_set_name(card), status))}. "
                   "It is now your active model.", icon=":material/check_circle:")
    elif status.state == "cancelled" and not status.started:
        st.info(f"{doing(status)} `{status.name}` cancelled before it started.", icon=":material/close:")
    elif status.state == "cancelled":
        st.info(f"{doing(status)} stopped: nothing was saved, the previous models are unchanged.",
                icon=":material/stop_circle:")
    elif status.state == "failed":
        st.error(f"{doing(status)} failed: {display.escape_markdown(in_users_words(status.error, status))}",
                 icon=":material/error:")


def doing(status: JobStatus) -> str:
    """What a job does, as its heading says it: "Training", or "Adapting" for a fine-tune on someone's drawings."""
    return "Adapting" if status.job.kind == "finetune" else "Training"


def watching(epochs) -> None:
    """Watch it learn: the drawing on the canvas when the training started, read after each epoch, and the
    first layer's filters as they are now."""
    frame = display.watched_frame(epochs)
    if len(frame):
        st.caption("**Your drawing**, as the network reads it after each epoch:")
        st.altair_chart(display.watched_chart(frame), width="stretch")
    latest = epochs[-1].watched.kernels() if epochs and epochs[-1].watched is not None else None
    if latest is not None:
        st.image(pictures.filters(latest), width="stretch",
                 caption=f"Its first layer's {latest.shape[-1]} filters after epoch {epochs[-1].epoch}: the "
                         "stroke patterns it has learned to look for (white: ink, black: no ink)",
                 alt="The first convolution layer's filters as small pictures")
    elif not len(frame):
        st.caption("After each epoch: the drawing on the canvas, read by the network, and its first "
                   "layer's filters.")

