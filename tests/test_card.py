"""The model card's schema: every card written so far reads; a damaged or hostile one is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_core.card import CardError, ModelCard, TrainingSource
from mnist_core.preprocessing import PREPROCESSING_VERSION

MODELS = Path(__file__).resolve().parent.parent / "models"
# Cards as earlier versions wrote them: the shipped default of 2026-11 (MNIST, USPS and optdigits, no versions).
EARLIER_CARDS = Path(__file__).resolve().parent / "cards"

# A card as the first versions of the project wrote it (before sources, LiteRT copies and versions).
OLD_CARD = {
    "name": "old", "architecture": "simple", "parameters": 592074,
    "training": {"epochs": 3, "batch_size": 128, "learning_rate": 0.001, "augment": True, "members": 1},
    "data": {"source": "/data/mnist", "sha256": "ab" * 32, "n_train": 54000, "n_validation": 6000},
    "test_set": {"source": "/data/mnist", "sha256": "ab" * 32, "n_test": 10000},
    "epochs_run": 3, "validation_error": 1.25, "test_error": 1.07,
}


@pytest.mark.parametrize("path", [MODELS / "default.json", EARLIER_CARDS / "default-2026-11.json"],
                         ids=["shipped", "2026-11"])
def test_the_shipped_default_cards_read_and_round_trip(path):
    card = ModelCard.from_dict(json.loads(path.read_text()))
    assert card.name == "default" and card.architecture.startswith("best")
    assert card.training.architecture == "best" and card.training.members == 2
    assert card.test_set.n_test == 10_000 and card.test_set.path == "../shared/data/mnist"
    assert len(card.confusion) == 10 and sum(map(sum, card.confusion)) == 10_000
    assert len(card.misclassified) == round(card.test_error * 100)
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card


def test_the_shipped_default_names_its_sources_and_its_base():
    card = ModelCard.from_dict(json.loads((MODELS / "default.json").read_text()))
    assert card.preprocessing == PREPROCESSING_VERSION and not card.older_preprocessing
    names = [s.name for s in card.data.extra]
    assert {"usps", "optdigits", "cvl", "bhmsds", "pendigits"} <= set(names)
    assert all(s.count > 0 and len(s.sha256) == 64 and s.preprocessing == PREPROCESSING_VERSION
               for s in card.data.extra)
    assert card.data.n_train == 60_000 + sum(s.count for s in card.data.extra)
    earlier = ModelCard.from_dict(json.loads((EARLIER_CARDS / "default-2026-11.json").read_text()))
    assert card.base_model is not None and card.base_model.keras_sha256 == earlier.keras_sha256
    assert earlier.older_preprocessing  # its USPS and optdigits digits went through version 1


def test_old_cards_read_with_defaults_for_what_they_lack():
    card = ModelCard.from_dict(OLD_CARD)
    assert card.preprocessing == 1 and card.base_model is None and card.data.extra == ()
    assert card.training.schedule == "auto" and card.litert_sha256 == ""
    assert not card.older_preprocessing  # trained on MNIST alone: no digit of it went through to_mnist
    legacy = ModelCard.from_dict({**OLD_CARD, "data": {**OLD_CARD["data"], "extra_source": "usps (7291)"}})
    assert legacy.data.describe_extra() == "usps (7291)" and legacy.older_preprocessing


def test_sources_are_typed_and_say_their_preprocessing():
    source = TrainingSource("cvl", "CVL train split", "/d/cvl.zip", "cd" * 32, 7000, PREPROCESSING_VERSION)
    values = {**OLD_CARD, "preprocessing": PREPROCESSING_VERSION,
              "data": {**OLD_CARD["data"], "extra": [source.as_dict()]}}
    card = ModelCard.from_dict(values)
    assert card.data.extra == (source,) and not card.older_preprocessing
    assert card.data.describe_extra() == "CVL train split (7,000)"
    assert ModelCard.from_dict({**values, "preprocessing": 1}).older_preprocessing
    assert card.test_set.path == "/data/mnist"
    keras_download = {**OLD_CARD, "test_set": {"source": "keras.datasets.mnist (/k/mnist.npz)", "n_test": 10}}
    assert ModelCard.from_dict(keras_download).test_set.path == "/k/mnist.npz"
    assert ModelCard.from_dict({**OLD_CARD, "test_set": {}}).test_set.path is None


@pytest.mark.parametrize("values, message", [
    ([1, 2, 3], "a card must be a JSON object, got a list"),
    ("card", "a card must be a JSON object, got text"),
    ({**OLD_CARD, "test_error": "0.2"}, "'test_error' must be a number or null, got text '0.2'"),
    ({**OLD_CARD, "test_error": float("nan")}, "'test_error' must be a number or null"),
    ({**OLD_CARD, "parameters": "many"}, "'parameters' must be a whole number, got text 'many'"),
    ({**OLD_CARD, "parameters": True}, "'parameters' must be a whole number, got true"),
    ({**OLD_CARD, "history": [1, 2]}, "'history' must be an object, got a list"),
    ({**OLD_CARD, "history": {"loss": "low"}}, "'history.loss' must be a list of numbers"),
    ({**OLD_CARD, "data": [1]}, "'data' must be an object, got a list"),
    ({**OLD_CARD, "test_set": {"n_test": "10000"}}, "'test_set.n_test' must be a whole number"),
    ({**OLD_CARD, "confusion": [[1, "2"]]}, "'confusion' must be a list of lists of whole numbers"),
    ({**OLD_CARD, "misclassified": [1.5]}, "'misclassified' must be a list of whole numbers"),
    ({**OLD_CARD, "data": {**OLD_CARD["data"], "extra": [{"name": "cvl"}]}}, "'data.extra[0].count' is missing"),
    ({k: v for k, v in OLD_CARD.items() if k != "name"}, "'name' is missing"),
    ({**OLD_CARD, "training": {"epochs": 3, "colour": 1, "members": 1}}, None),  # unknown fields are ignored
])
def test_a_card_off_the_schema_is_refused_naming_the_field(values, message):
    if message is None:
        assert ModelCard.from_dict(values).training.epochs == 3
        return
    with pytest.raises(CardError) as error:
        ModelCard.from_dict(values)
    assert message in str(error.value)


def test_the_shipped_default_names_each_source_by_the_checksum_of_its_file(handwriting_dir):
    """Each source's sha256 is its file's, as ../shared/data/SHA256SUMS lists it."""
    listed = dict(reversed(line.split()) for line in (handwriting_dir / "SHA256SUMS").read_text().splitlines())
    card = ModelCard.from_dict(json.loads((MODELS / "default.json").read_text()))
    for source in card.data.extra:
        if source.path:  # synthetic copies have none
            name = Path(source.path).relative_to("../shared/data").as_posix()
            assert listed[name] == source.sha256, source.name


ADAPTATION = {"drawings": "/srv/drawings/0123456789abcdef/images", "sha256": "ef" * 32, "count": 30, "trained": 20,
              "held_back": 10, "accuracy_before": 70.0, "accuracy_after": 100.0, "replay": 4000, "counts": [3] * 10}


def test_an_adapted_models_drawings_and_figures_read_back():
    card = ModelCard.from_dict({**OLD_CARD, "adaptation": ADAPTATION})
    a = card.adaptation
    assert (a.count, a.trained, a.held_back, a.accuracy_before, a.accuracy_after) == (30, 20, 10, 70.0, 100.0)
    assert a.counts == [3] * 10 and a.replay == 4000
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    too_few = ModelCard.from_dict({**OLD_CARD, "adaptation": {**ADAPTATION, "held_back": 0, "accuracy_before": None,
                                                              "accuracy_after": None}})
    assert too_few.adaptation.accuracy_before is None and too_few.adaptation.accuracy_after is None
    assert ModelCard.from_dict(OLD_CARD).adaptation is None  # every card before it: not adapted


@pytest.mark.parametrize("adaptation, message", [
    ([1], "'adaptation' must be an object or null, got a list"),
    ({**ADAPTATION, "count": "30"}, "'adaptation.count' must be a whole number, got text '30'"),
    ({**ADAPTATION, "accuracy_after": "100%"}, "'adaptation.accuracy_after' must be a number or null"),
    ({**ADAPTATION, "counts": [3, "3"]}, "'adaptation.counts' must be a list of whole numbers"),
    ({k: v for k, v in ADAPTATION.items() if k != "sha256"}, "'adaptation.sha256' is missing"),
])
def test_an_adaptation_off_the_schema_is_refused_naming_the_field(adaptation, message):
    with pytest.raises(CardError) as error:
        ModelCard.from_dict({**OLD_CARD, "adaptation": adaptation})
    assert message in str(error.value)
