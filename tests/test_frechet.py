"""The Fréchet distance and streaming feature statistics."""

import numpy as np
import pytest

from evaluation.frechet import FeatureStatistics, frechet_distance


def test_identical_gaussians_have_zero_distance():
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((500, 6))
    mean, cov = samples.mean(axis=0), np.cov(samples, rowvar=False)

    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_gaussians_match_closed_form():
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])

    # For diagonal covariances the trace term is sum(var_a + var_b - 2 sqrt(var_a var_b)).
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))

    assert frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(expected)


def test_streaming_statistics_match_numpy():
    features = np.random.default_rng(1).standard_normal((103, 5)) * [1, 2, 3, 4, 5]
    statistics = FeatureStatistics(dim=5)
    for start in range(0, 103, 10):
        statistics.add(features[start : start + 10])

    assert statistics.count == 103
    np.testing.assert_allclose(statistics.mean, features.mean(axis=0))
    np.testing.assert_allclose(statistics.covariance, np.cov(features, rowvar=False))


def test_singular_covariances_still_give_a_distance():
    rng = np.random.default_rng(2)
    few = rng.standard_normal((3, 8))
    others = rng.standard_normal((3, 8)) + 1.0

    distance = frechet_distance(few.mean(0), np.cov(few, rowvar=False), others.mean(0), np.cov(others, rowvar=False))

    assert np.isfinite(distance)
    assert distance > 0


def test_statistics_reject_wrong_width():
    with pytest.raises(ValueError, match=r"expected features of shape \[N, 4\]"):
        FeatureStatistics(dim=4).add(np.zeros((2, 3)))


def test_covariance_needs_two_vectors():
    statistics = FeatureStatistics(dim=2)
    statistics.add(np.zeros((1, 2)))

    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        statistics.covariance
