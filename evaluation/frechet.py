"""Feature statistics and the Fréchet distance between two Gaussians, the core of FID.

Reference: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
Nash Equilibrium" (2017), eq. 6:  d^2 = |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)).
"""

import logging
from dataclasses import dataclass

import numpy as np
from scipy import linalg

logger = logging.getLogger(__name__)

# Added to both diagonals when C_a C_b is singular, which happens when there are fewer samples than
# feature dimensions; pytorch-fid uses the same offset.
SINGULAR_OFFSET = 1e-6
# Largest imaginary part of the matrix square root's diagonal that is treated as round-off.
IMAGINARY_TOLERANCE = 1e-3


@dataclass
class FeatureStatistics:
    """Streaming mean and covariance of feature vectors, accumulated in float64."""

    dim: int
    count: int = 0

    def __post_init__(self) -> None:
        self._sum = np.zeros(self.dim, dtype=np.float64)
        self._outer_sum = np.zeros((self.dim, self.dim), dtype=np.float64)

    def add(self, features: np.ndarray) -> None:
        """Accumulate a batch of feature vectors [N, dim]."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"expected features of shape [N, {self.dim}], got {features.shape}")
        self.count += len(features)
        self._sum += features.sum(axis=0)
        self._outer_sum += features.T @ features

    @property
    def mean(self) -> np.ndarray:
        return self._sum / self.count

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased sample covariance (divided by N - 1), as numpy.cov computes it."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        mean = self.mean
        return (self._outer_sum - self.count * np.outer(mean, mean)) / (self.count - 1)


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Return the squared Fréchet distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    NOTE: FID computed from few samples is biased upwards; compare models at equal sample counts.
    """
    mean_a, mean_b = np.atleast_1d(mean_a), np.atleast_1d(mean_b)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    if mean_a.shape != mean_b.shape or cov_a.shape != cov_b.shape:
        raise ValueError(f"statistics differ in shape: {mean_a.shape} vs {mean_b.shape}, {cov_a.shape} vs {cov_b.shape}")

    # Tr((C_a C_b)^(1/2)) is the sum of the square roots of the eigenvalues of C_a C_b, which are
    # real and non-negative because C_a C_b is similar to C_a^(1/2) C_b C_a^(1/2), a PSD matrix.
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        logger.warning("C_a C_b is singular; adding %g to both diagonals", SINGULAR_OFFSET)
        offset = np.eye(len(cov_a)) * SINGULAR_OFFSET
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))

    if np.iscomplexobj(covmean):
        largest = np.max(np.abs(np.diagonal(covmean).imag))
        if largest > IMAGINARY_TOLERANCE:
            raise ValueError(f"matrix square root has an imaginary component of {largest:.3g}; the covariances are not valid")
        covmean = covmean.real

    difference = mean_a - mean_b
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
