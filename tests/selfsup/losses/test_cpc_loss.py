"""CPC's InfoNCE over a grid (eq. 4 of van den Oord et al. 2018): a hand computation and the log N bound."""

import math

import pytest
import torch

from selfsup.losses import CPCLoss, cpc_info_nce
from selfsup.losses.cpc import cpc_logits, mutual_information_bound, positive_indices


def _hand_loss(predictions: torch.Tensor, targets: torch.Tensor, step: int) -> float:
    """Eq. (4) with Python floats (float64) and loops: -log softmax of z_{b,i+k,j} . zhat among all z."""
    batch, rows, cols, _ = predictions.shape
    candidates = [targets[b, i, j].tolist() for b in range(batch) for i in range(rows) for j in range(cols)]
    losses = []
    for b in range(batch):
        for i in range(rows - step):
            for j in range(cols):
                query = predictions[b, i, j].tolist()
                scores = [sum(q * z for q, z in zip(query, candidate)) for candidate in candidates]
                positive = scores[b * rows * cols + (i + step) * cols + j]
                largest = max(scores)
                log_normaliser = largest + math.log(sum(math.exp(s - largest) for s in scores))
                losses.append(log_normaliser - positive)
    return sum(losses) / len(losses)


def test_two_images_on_a_two_by_two_grid_match_the_hand_computation():
    generator = torch.Generator().manual_seed(0)
    predictions = torch.randn(2, 2, 2, 2, generator=generator, dtype=torch.float64)
    targets = torch.randn(2, 2, 2, 2, generator=generator, dtype=torch.float64)
    # The four queries are the top rows; the positive of (b, 0, j) is z_{b,1,j}, among all 8 encodings.
    assert positive_indices(2, 2, 2, step=1).tolist() == [2, 3, 6, 7]
    # By hand for the first query: scores of zhat_{0,1,0} against the 8 candidates.
    query, flat = predictions[0, 0, 0], targets.reshape(8, 2)
    scores = [float(query[0] * z[0] + query[1] * z[1]) for z in flat]
    first = -(scores[2] - math.log(sum(math.exp(s) for s in scores)))
    logits, positives = cpc_logits(predictions, flat, step=1)
    assert logits[0].tolist() == pytest.approx(scores, rel=1e-6)
    assert float(torch.nn.functional.cross_entropy(logits[:1], positives[:1])) == pytest.approx(first, rel=1e-6)

    expected = _hand_loss(predictions, targets, step=1)
    assert float(cpc_info_nce(predictions, targets, step=1)) == pytest.approx(expected, rel=1e-6)


def test_the_module_averages_the_steps_each_matching_the_hand_computation():
    generator = torch.Generator().manual_seed(1)
    predictions = [torch.randn(2, 4, 3, 5, generator=generator, dtype=torch.float64) for _ in range(2)]
    targets = torch.randn(2, 4, 3, 5, generator=generator, dtype=torch.float64)
    loss, logs = CPCLoss(steps=(1, 3))(predictions, targets)
    by_step = [_hand_loss(predictions[0], targets, 1), _hand_loss(predictions[1], targets, 3)]
    assert float(logs["loss_k1"]) == pytest.approx(by_step[0], rel=1e-6)
    assert float(logs["loss_k3"]) == pytest.approx(by_step[1], rel=1e-6)
    assert float(loss) == pytest.approx(sum(by_step) / 2, rel=1e-6)
    assert float(logs["mi_k3"]) == pytest.approx(math.log(2 * 4 * 3) - by_step[1], rel=1e-6)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 10.0, 1e3])
def test_the_loss_is_nonnegative_and_the_mi_estimate_never_exceeds_log_n(scale):
    generator = torch.Generator().manual_seed(2)
    predictions = [scale * torch.randn(3, 4, 4, 8, generator=generator) for _ in range(3)]
    targets = torch.randn(3, 4, 4, 8, generator=generator)
    num_candidates = 3 * 4 * 4
    loss, logs = CPCLoss(steps=(1, 2, 3))(predictions, targets)
    assert torch.isfinite(loss) and loss >= 0
    for step in (1, 2, 3):
        assert logs[f"loss_k{step}"] >= 0
        assert logs[f"mi_k{step}"] <= math.log(num_candidates)
        assert mutual_information_bound(logs[f"loss_k{step}"], num_candidates) == logs[f"mi_k{step}"]


def test_a_blind_predictor_scores_zero_and_a_perfect_one_approaches_log_n():
    batch, rows, cols, step = 2, 3, 3, 1
    targets = torch.eye(batch * rows * cols).reshape(batch, rows, cols, -1)  # orthonormal encodings
    num_candidates = batch * rows * cols
    blind = cpc_info_nce(torch.zeros_like(targets), targets, step)
    assert float(blind) == pytest.approx(math.log(num_candidates), rel=1e-6)  # uniform: MI estimate 0
    perfect = torch.zeros_like(targets)
    perfect[:, : rows - step] = 30.0 * targets[:, step:]  # zhat_{i+k,j} points at z_{i+k,j}
    estimate = mutual_information_bound(cpc_info_nce(perfect, targets, step), num_candidates)
    assert float(estimate) == pytest.approx(math.log(num_candidates), abs=1e-5)


def test_steps_off_the_grid_are_refused():
    with pytest.raises(ValueError, match="prediction step"):
        cpc_info_nce(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), step=2)
    with pytest.raises(ValueError, match="distinct prediction steps"):
        CPCLoss(steps=(0, 1))
    with pytest.raises(ValueError, match="as many predictions"):
        CPCLoss(steps=(1, 2))([torch.zeros(1, 3, 2, 2)], torch.zeros(1, 3, 2, 2))
