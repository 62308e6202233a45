"""LogME: how well frozen features suit a labelled task, without training anything.

You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021. For each class k, the one-hot target y_k is modelled as a
Bayesian linear regression on the features F (N x D): weights w ~ N(0, 1/alpha),
noise ~ N(0, 1/beta). The log marginal likelihood (evidence)

    L(alpha, beta) = N/2 log beta + D/2 log alpha - N/2 log 2pi
                     - beta/2 ||F m - y||^2 - alpha/2 ||m||^2 - 1/2 log|A|,
    A = alpha I + beta F^T F,   m = beta A^-1 F^T y,

is maximised over alpha and beta by MacKay's fixed-point updates, computed in the
eigenbasis of F^T F (one SVD for all classes). LogME is the maximum evidence divided
by N, averaged over classes: higher means the features fit the labels better.

LogME does not depend on the scale of the features (F -> cF is absorbed by
alpha -> alpha / c^2), nor on an orthogonal rotation of them (the prior is isotropic):
the iteration runs on F divided by its largest singular value, so that its floors
act at the same place whatever the scale. Targets that lie exactly in the span of
the features (e.g. one class and a constant feature) have unbounded evidence; there
the residual's floor of 1e-12 keeps the score finite and large.
"""

import math
import sys

import torch

from selfsup.errors import ConfigurationError

#: Floor of alpha and beta: a representation without signal (all-zero features, a collapsed
#: backbone) drives alpha to 0, where the evidence is still finite (its log-alpha terms cancel).
_SMALLEST = sys.float_info.min


@torch.no_grad()
def logme(features: torch.Tensor, labels: torch.Tensor, max_iter: int = 1000, tolerance: float = 1e-8) -> float:
    if not torch.isfinite(features).all():
        raise ConfigurationError(
            "LogME needs finite features, but the backbone produced NaN or infinite ones: the checkpoint has diverged."
        )
    features = features.double()
    count, dim = features.shape
    left, singular, _ = torch.linalg.svd(features, full_matrices=False)
    if singular.numel() and singular[0] > 0:
        singular = singular / singular[0]
    eigenvalues = singular**2
    evidences = []
    for label in labels.unique(sorted=True):
        target = (labels == label).double()
        projections = left.T @ target
        outside = (target @ target - projections @ projections).clamp_min(0.0)
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            denominator = alpha + beta * eigenvalues
            gamma = (beta * eigenvalues / denominator).sum()
            weight_norm = ((beta * singular * projections / denominator) ** 2).sum()
            residual = ((alpha * projections / denominator) ** 2).sum() + outside
            new_alpha = max((gamma / weight_norm.clamp_min(1e-12)).item(), _SMALLEST)
            new_beta = max(((count - gamma) / residual.clamp_min(1e-12)).item(), _SMALLEST)
            converged = abs(new_alpha - alpha) / alpha < tolerance and abs(new_beta - beta) / beta < tolerance
            alpha, beta = new_alpha, new_beta
            if converged:
                break
        denominator = alpha + beta * eigenvalues
        weight_norm = ((beta * singular * projections / denominator) ** 2).sum()
        residual = ((alpha * projections / denominator) ** 2).sum() + outside
        log_determinant = torch.log(denominator).sum() + (dim - len(eigenvalues)) * math.log(alpha)
        evidence = (
            count / 2 * math.log(beta)
            + dim / 2 * math.log(alpha)
            - count / 2 * math.log(2 * math.pi)
            - beta / 2 * residual
            - alpha / 2 * weight_norm
            - log_determinant / 2
        )
        evidences.append(evidence.item() / count)
    return sum(evidences) / len(evidences)
