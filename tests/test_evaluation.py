"""Evaluation on real MNIST test images: the figures agree with each other and with the model."""

import numpy as np
import pytest

from mnist_core.evaluation import evaluate, predict_probabilities


def test_figures_are_consistent_with_the_models_own_predictions(trained_store, mnist):
    model, _ = trained_store.load("small")
    x, y = mnist.x_test[:2000], mnist.y_test[:2000]
    result = evaluate(model, x, y)
    predicted = predict_probabilities(model, x).argmax(axis=1)
    assert np.array_equal(result.predicted, predicted)
    assert result.n_test == 2000
    assert result.test_error == pytest.approx(100 * np.mean(predicted != y))
    assert np.array_equal(result.misclassified, np.flatnonzero(predicted != y))
    assert result.confusion.sum() == 2000
    assert np.array_equal(result.confusion.sum(axis=1), np.bincount(y, minlength=10))
    for digit in range(10):
        in_class = y == digit
        assert result.per_class_error[digit] == pytest.approx(100 * np.mean(predicted[in_class] != digit))
    assert 0 < result.test_error < 15  # a real, briefly trained CNN: far better than chance, not perfect


def test_batches_do_not_change_the_answer(trained_store, mnist):
    model, _ = trained_store.load("small")
    x = mnist.x_test[:300]
    np.testing.assert_allclose(predict_probabilities(model, x, batch_size=7), predict_probabilities(model, x),
                               rtol=1e-5, atol=1e-6)


def test_summary_is_json_ready(trained_store, mnist):
    import json

    model, _ = trained_store.load("small")
    summary = evaluate(model, mnist.x_test[:100], mnist.y_test[:100]).summary()
    assert set(summary) >= {"test_error", "n_test", "per_class_error", "confusion", "misclassified"}
    json.dumps(summary)


def test_empty_test_set_is_refused(trained_store):
    model, _ = trained_store.load("small")
    with pytest.raises(ValueError, match="empty test set"):
        evaluate(model, np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.uint8))
