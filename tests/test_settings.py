"""Training settings: their limits, the presets, and the names the command line offers."""

import subprocess
import sys
from pathlib import Path

import pytest

from mnist_core.architectures import ARCHITECTURES
from mnist_core.settings import PRESETS, TrainingSettings


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
        ({"box_filled": -1}, "box_filled must be a whole number from 0"),
    ],
)
def test_settings_out_of_range_are_refused_with_the_reason(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingSettings(**changes).check()


def test_every_preset_is_valid_and_only_best_decays_by_default():
    for name, settings in PRESETS.items():
        assert settings.check() is settings, name
    assert PRESETS["best"].resolved_schedule == PRESETS["quick"].resolved_schedule == "cosine"  # quick asks for it
    assert PRESETS["tutorial-simple"].resolved_schedule == TrainingSettings("simple").resolved_schedule == "constant"
    assert TrainingSettings("best", schedule="constant").resolved_schedule == "constant"


def test_settings_cross_a_process_boundary_as_json_unchanged():
    for settings in [*PRESETS.values(), TrainingSettings(learning_rate=0.1 + 0.2, box_filled=7, handwriting_data="/x")]:
        again = TrainingSettings.from_json(settings.to_json())
        assert again == settings and isinstance(again.extra_sources, tuple)
    with pytest.raises(ValueError, match="unknown training settings: colour"):
        TrainingSettings.from_json('{"colour": "red"}')
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        TrainingSettings.from_json("[1, 2]")


def test_the_settings_know_every_architecture_without_tensorflow():
    """The command line and the settings read the zoo's table, which loads no TensorFlow."""
    assert all(TrainingSettings(name).check() for name in ARCHITECTURES)
    code = "import sys, mnist_core.settings; print('tensorflow' in sys.modules)"
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout == "False\n"
