"""The training engine on real MNIST: progress reports, cancellation, ensembles, augmentation."""

import threading

import numpy as np
import pytest
import tensorflow as tf

from mnist_core.augmentation import AugmentationSettings, augment_batch
from mnist_core.data import MnistData
from mnist_core.settings import TrainingSettings
from mnist_core.training import TrainingCancelled, make_dataset, train


@pytest.fixture(scope="module")
def slice_2k(mnist):
    return MnistData(mnist.x_train[:2000], mnist.y_train[:2000], mnist.x_test[:500], mnist.y_test[:500],
                     source="slice", sha256="")


def test_batch_larger_than_the_data_is_refused(slice_2k):
    with pytest.raises(ValueError, match="batch size 5000 is larger than the 1800 training images"):
        train(slice_2k, TrainingSettings("baseline", epochs=1, batch_size=5000))


def test_reports_progress_per_batch_and_per_epoch(slice_2k):
    reports = []
    result = train(slice_2k, TrainingSettings("baseline", epochs=2, batch_size=100), progress=reports.append)
    batches = [r for r in reports if not r.epoch_end]
    epochs = [r for r in reports if r.epoch_end]
    assert len(batches) == 2 * 18 and [r.epoch for r in epochs] == [1, 2]  # 1,800 images / 100
    assert all(r.batches == 18 and 1 <= r.batch <= 18 for r in batches)
    assert all(r.val_accuracy is None for r in batches)
    assert all(0 <= r.val_accuracy <= 1 and r.val_loss > 0 for r in epochs)
    assert all(r.images_per_second > 0 and r.seconds_left >= 0 for r in reports)
    assert epochs[-1].fraction_done == 1.0 and epochs[-1].seconds_left == pytest.approx(0, abs=1e-6)
    assert epochs[1].loss < batches[0].loss  # it learns
    assert result.history["loss"] == pytest.approx([r.loss for r in epochs], rel=1e-5)
    assert result.n_train == 1800 and result.n_validation == 200 and 0 <= result.validation_error < 50


def test_stop_cancels_between_batches(slice_2k):
    stop = threading.Event()
    seen = []

    def progress(report):
        seen.append(report)
        if report.epoch == 1 and report.batch == 3:
            stop.set()

    with pytest.raises(TrainingCancelled, match="epoch 1 of 50"):
        train(slice_2k, TrainingSettings("baseline", epochs=50, batch_size=100), progress=progress, stop=stop)
    assert max(r.epoch for r in seen) == 1 and max(r.batch for r in seen) <= 4


def test_validation_comes_from_the_datasets_own_split_when_it_has_one(slice_2k):
    data = MnistData(slice_2k.x_train[:1500], slice_2k.y_train[:1500], slice_2k.x_test, slice_2k.y_test,
                     source="s", sha256="", x_val=slice_2k.x_train[1500:], y_val=slice_2k.y_train[1500:])
    result = train(data, TrainingSettings("baseline", epochs=1, batch_size=100, validation_split=0.2))
    assert result.n_train == 1500 and result.n_validation == 500


def test_no_validation_split_trains_on_everything(slice_2k):
    result = train(slice_2k, TrainingSettings("baseline", epochs=1, batch_size=100, validation_split=0))
    assert result.n_train == 2000 and result.n_validation == 0 and result.validation_error is None


def test_members_train_separately_and_are_averaged(slice_2k):
    result = train(slice_2k, TrainingSettings("baseline", epochs=1, batch_size=100, members=2))
    assert len(result.member_histories) == 2
    assert result.model.count_params() == 2 * 623_290
    assert result.member_histories[0]["loss"] != result.member_histories[1]["loss"]  # different seeds


def test_augmented_batches_stay_images_of_the_same_digits(mnist):
    x, y = mnist.x_train[:256], mnist.y_train[:256]
    images, labels = next(iter(make_dataset(x, y, 256, shuffle=False, augment=True, seed=0)))
    images = images.numpy()
    assert images.shape == (256, 28, 28, 1) and 0 <= images.min() and images.max() <= 1.0
    assert np.array_equal(labels.numpy(), y)
    original = x.astype(np.float32) / 255
    changed = np.abs(images[..., 0] - original).mean(axis=(1, 2))
    assert (changed > 0.01).mean() > 0.9  # nearly every image is transformed...
    ink_ratio = images[..., 0].sum(axis=(1, 2)) / original.sum(axis=(1, 2))
    assert np.median(ink_ratio) == pytest.approx(1.0, abs=0.25)  # ...but keeps about its ink


def test_augmentation_with_every_range_zero_leaves_images_unchanged(mnist):
    x = tf.constant(mnist.x_train[:64, :, :, None] / 255.0, tf.float32)
    still = AugmentationSettings(rotation_degrees=0, shear_degrees=0, zoom=0, shift_pixels=0,
                                 thicken_probability=0, thin_probability=0, aspect=0)
    np.testing.assert_allclose(augment_batch(x, still).numpy(), x.numpy(), atol=1e-6)


def test_aspect_augmentation_makes_digits_wider_and_narrower(mnist):
    """A '1' stretched sideways gets wider and shorter, or narrower and taller: the width/height ratio varies."""
    one = mnist.x_train[mnist.y_train == 1][0]
    x = tf.constant(np.repeat(one[None, :, :, None], 200, axis=0) / 255.0, tf.float32)
    only_aspect = AugmentationSettings(rotation_degrees=0, shear_degrees=0, zoom=0, shift_pixels=0,
                                       thicken_probability=0, thin_probability=0, aspect=0.5)

    def ink_width_over_height(image):
        rows, cols = np.nonzero(image > 0.3)
        return (np.ptp(cols) + 1) / (np.ptp(rows) + 1)

    ratios = np.array([ink_width_over_height(im[..., 0]) for im in augment_batch(x, only_aspect).numpy()])
    original = ink_width_over_height(one / 255.0)
    assert ratios.min() < 0.85 * original and ratios.max() > 1.15 * original


def test_each_epoch_reports_the_watched_drawing_and_the_first_filters(slice_2k):
    from mnist_core.protocol import parse_line, progress_line

    reports = []
    train(slice_2k, TrainingSettings("large", epochs=2, batch_size=100), progress=reports.append,
          watch=slice_2k.x_test[0])
    epochs = [r for r in reports if r.epoch_end]
    assert all(r.watched is None for r in reports if not r.epoch_end)
    for r in epochs:
        assert len(r.watched.probabilities) == 10 and sum(r.watched.probabilities) == pytest.approx(1, abs=1e-3)
        assert r.watched.kernels().shape == (5, 5, 1, 30)
        assert parse_line(progress_line(r)).progress == r  # it crosses to the page intact
    assert epochs[1].watched.probabilities[slice_2k.y_test[0]] > 0.5


def test_a_network_without_convolutions_reports_no_filters(slice_2k):
    reports = []
    train(slice_2k, TrainingSettings("baseline", epochs=1, batch_size=200), progress=reports.append)
    (last,) = [r for r in reports if r.epoch_end]
    assert last.watched.probabilities is None and last.watched.kernels() is None
