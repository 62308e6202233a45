"""TransRate: the mutual information between features and labels, estimated by coding rates.

Huang, Huang, Rong, Yang, Wei, "Frustratingly Easy Transferability Estimation", ICML 2022.
The coding rate of n centred features Z (n x d) at distortion epsilon,

    R(Z, epsilon) = 1/2 logdet( I_d + d / (n epsilon^2) Z^T Z ),

stands in for the entropy H(Z), and the class-weighted rate of the class subsets Z_c
(each with its own n_c) for H(Z | Y):

    TransRate = R(Z, epsilon) - sum_c (n_c / n) R(Z_c, epsilon);   higher is better.

The features are centred once, by their overall mean, and the class subsets keep their
offsets from it, as in the authors' code. Then for two balanced classes with the same
spread, Z_c^T Z_c / n_c = Z^T Z / n whatever their separation (the mean offsets are +-m), and
TransRate is blind to it. ``centre_classes=True`` centres every Z_c on its own mean, which
reads R as the entropy it stands for (an entropy does not change under translation), so
that the score grows with the distance between the class means.

The determinant is taken of the smaller of the d x d and n x n Gram matrices (Sylvester's
identity: det(I_d + a Z^T Z) = det(I_n + a Z Z^T)). The score is invariant to orthogonal
transformations of the features, not to their scale: epsilon is in the units of the
features. Its default 0.01 gives epsilon^2 = 1e-4, the ``eps`` of the authors' code, which
writes the factor as 1 / (n eps) (without d).
"""

import numpy as np

from downstream.transferability._checks import features_and_classes, is_positive_number, require_option


def coding_rate(features: np.ndarray, epsilon: float) -> float:
    """R(Z, epsilon) = 1/2 logdet(I + d / (n epsilon^2) Z^T Z) of Z (n x d) as given (not centred here)."""
    count, dim = features.shape
    gram = features @ features.T if count < dim else features.T @ features
    _, log_determinant = np.linalg.slogdet(np.eye(len(gram)) + dim / (count * epsilon**2) * gram)
    return float(log_determinant / 2)


def transrate(features, labels, epsilon: float = 0.01, centre_classes: bool = False) -> float:
    """TransRate of features (N x D) for labels (N,) at distortion ``epsilon``.

    ``centre_classes`` centres every class on its own mean before its coding rate.
    """
    features, classes, sizes = features_and_classes(features, labels, "transrate")
    require_option(is_positive_number(epsilon), "transrate", "epsilon", epsilon, "a finite number > 0")
    centred = features - features.mean(axis=0)
    class_rate = 0.0
    for label, size in enumerate(sizes):
        members = centred[classes == label]
        if centre_classes:
            members = members - members.mean(axis=0)
        class_rate += size / len(features) * coding_rate(members, epsilon)
    return float(coding_rate(centred, epsilon) - class_rate)
