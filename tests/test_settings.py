"""Training settings: their limits, the presets, and the names the command line offers."""

import subprocess
import sys
from pathlib import Path

import pytest

from mnist_core.architectures import ARCHITECTURES
from mnist_core.settings import ARCHITECTURE_NAMES, PRESETS, TrainingSettings


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 0}, "epochs must be a whole number from 1"),
        ({"epochs": -3}, "epochs must be a whole number from 1"),
        ({"batch_size": 0}, "batch size must be a whole number of at least 1"),
        ({"learning_rate": 0.0}, "learning rate must be above 0"),
        ({"learning_rate": float("nan")}, "learning rate must be above 0"),
        ({"learning_rate": float("inf")}, "learning rate must be above 0"),
        ({"schedule": "step"}, "schedule must be one of auto, constant, cosine"),
        ({"validation_split": 0.7}, r"validation split must be in \[0, 0.5\)"),
        ({"members": 9}, "members must be a whole number from 1 to 5"),
        ({"architecture": "vgg"}, "unknown architecture 'vgg'"),
    ],
)
def test_settings_out_of_range_are_refused_with_the_reason(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingSettings(**changes).check()


def test_every_preset_is_valid_and_only_best_decays_by_default():
    for name, settings in PRESETS.items():
        assert settings.check() is settings, name
    assert PRESETS["best"].cosine and PRESETS["quick"].cosine  # quick asks for it explicitly
    assert not PRESETS["tutorial-simple"].cosine and not TrainingSettings("simple").cosine
    assert TrainingSettings("best").cosine and not TrainingSettings("best", schedule="constant").cosine


def test_the_settings_know_every_architecture_by_name():
    """The command line takes the names from here, which loads no TensorFlow."""
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
    code = "import sys, mnist_core.settings; print('tensorflow' in sys.modules)"
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout == "False\n"
