"""AMDIM's clipped multi-location NCE: a hand computation, the bound, and the view symmetry."""

import math

import pytest
import torch

from selfsup.errors import ConfigurationError
from selfsup.losses import amdim as amdim_losses
from selfsup.losses.amdim import AMDIMLoss, clipped_nce, tanh_clip

# 2 images; sources of width 2; targets: 2x2 maps, 4 locations of width 2 (float64, by hand).
SOURCES = [[2.0, 1.0], [-1.0, 3.0]]
TARGETS = [
    [[1.5, 0.5], [0.0, 2.0], [-1.0, 1.0], [2.5, -0.5]],
    [[0.5, 1.5], [1.0, 1.0], [3.0, 0.0], [-2.0, 2.0]],
]


def _by_hand(sources, targets, clip, weight):
    """Plain Python: raw = s.t/sqrt(d), phi = c tanh(raw/c), NCE over own location vs other images' locations."""
    d = len(sources[0])
    raw = [[[sum(a * b for a, b in zip(s, t)) / math.sqrt(d) for t in image] for image in targets] for s in sources]
    phi = [[[clip * math.tanh(r / clip) for r in image] for image in row] for row in raw]
    losses = []
    for i, row in enumerate(phi):
        negatives = [math.exp(v) for j, image in enumerate(row) if j != i for v in image]
        for positive in row[i]:
            losses.append(-math.log(math.exp(positive) / (math.exp(positive) + sum(negatives))))
    squares = [r * r for row in raw for image in row for r in image]
    return sum(losses) / len(losses), weight * sum(squares) / len(squares)


def test_the_loss_equals_a_hand_computation_with_the_clip_and_the_penalty():
    sources, targets = torch.tensor(SOURCES, dtype=torch.float64), torch.tensor(TARGETS, dtype=torch.float64)
    clip, weight = 1.5, 0.05  # raw scores up to 3.5: the clip bends them visibly
    expected_nce, expected_penalty = _by_hand(SOURCES, TARGETS, clip, weight)

    nce, squared, candidates = clipped_nce(sources, targets, clip)
    assert candidates == 1 + 1 * 4  # the positive and the other image's 4 locations
    assert nce.item() == pytest.approx(expected_nce, rel=1e-12)
    assert weight * squared.item() == pytest.approx(expected_penalty, rel=1e-12)
    unclipped, _, _ = clipped_nce(sources, targets, 1e6)
    assert abs(unclipped.item() - nce.item()) > 0.1  # the clip changes the number

    # The module: one pairing, both directions, NCE + penalty; here view 2 of a pairing is view 1 swapped.
    loss, logs = AMDIMLoss({"1t5": ("global", "coarse")}, clip, weight)(
        {"global": (sources, sources.flip(0))}, {"coarse": (targets.flip(0), targets)}
    )
    assert loss.item() == pytest.approx(expected_nce + expected_penalty, rel=1e-12)
    assert logs["nce_1t5"].item() == pytest.approx(expected_nce, rel=1e-12)
    assert logs["score_penalty"].item() == pytest.approx(expected_penalty, rel=1e-12)
    assert logs["mi_1t5"].item() == pytest.approx(math.log(5) - expected_nce, rel=1e-12)


def test_tanh_clip_is_the_identity_near_zero_and_bounded_by_c():
    scores = torch.tensor([-1e3, -1e-3, 0.0, 1e-3, 1e3], dtype=torch.float64)
    clipped = tanh_clip(scores, 20.0)
    assert clipped[1:4].tolist() == pytest.approx(scores[1:4].tolist(), abs=1e-9)
    assert clipped[[0, -1]].tolist() == pytest.approx([-20.0, 20.0])


@pytest.mark.parametrize("scale", [0.1, 3.0, 100.0], ids=["small", "medium", "saturated"])
def test_the_loss_is_non_negative_and_the_estimate_never_exceeds_log_candidates(scale):
    torch.manual_seed(0)
    sources, targets = scale * torch.randn(6, 8), scale * torch.randn(6, 5, 8)
    nce, _, candidates = clipped_nce(sources, targets, 20.0)
    assert candidates == 1 + 5 * 5
    assert nce.item() >= 0
    assert math.log(candidates) - nce.item() <= math.log(candidates)


def test_perfect_features_approach_the_bound_which_the_clip_keeps_out_of_reach():
    """Own locations aligned, others opposed: the estimate nears log N, less the clip's floor."""
    directions = torch.eye(4, dtype=torch.float64)
    sources = 100 * directions
    targets = (100 * directions[:, None, :]).expand(4, 3, 4) - 50 * (1 - directions[:, None, :])
    candidates = 1 + 3 * 3
    for clip in (20.0, 1.0):
        nce, _, n = clipped_nce(sources, targets, clip)
        assert n == candidates
        floor = math.log(1 + (candidates - 1) * math.exp(-2 * clip))  # every phi lies in (-c, c)
        assert nce.item() >= floor - 1e-12
        assert nce.item() == pytest.approx(floor, rel=1e-3)
    assert math.log(candidates) - floor < math.log(candidates) - 0.5  # clip 1: at least 0.5 nats below


def test_the_gradient_reaches_sources_and_targets_of_every_pairing():
    torch.manual_seed(0)
    tensors = {
        "global": [torch.randn(4, 6, requires_grad=True) for _ in range(2)],
        "coarse": [torch.randn(4, 3, 6, requires_grad=True) for _ in range(2)],
        "fine": [torch.randn(4, 5, 6, requires_grad=True) for _ in range(2)],
    }
    pairings = {"1t5": ("global", "coarse"), "1t7": ("global", "fine"), "5t5": ("coarse", "coarse")}
    coarse_sources = tuple(view[:, 0] for view in tensors["coarse"])
    loss, logs = AMDIMLoss(pairings)(
        {"global": tuple(tensors["global"]), "coarse": coarse_sources},
        {"coarse": tuple(tensors["coarse"]), "fine": tuple(tensors["fine"])},
    )
    loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for views in tensors.values() for t in views)
    assert sorted(logs) == sorted([f"{kind}_{name}" for name in pairings for kind in ("nce", "mi")] + ["score_penalty"])
    nces = sum(logs[f"nce_{name}"] for name in pairings)
    assert loss.item() == pytest.approx((nces + logs["score_penalty"]).item(), rel=1e-6)


def test_targets_are_gathered_in_the_pairings_order_the_same_on_every_rank(monkeypatch):
    """Not in a set's order: that varies with each process's string hashing, and ranks would then
    all-gather different tensors at the same step (gloo: "collective mismatch")."""
    gathered = []
    monkeypatch.setattr(amdim_losses, "gather_with_grad", lambda tensor: gathered.append(tensor.shape[1]) or tensor)
    torch.manual_seed(0)
    sources = {"global": (torch.randn(3, 4), torch.randn(3, 4))}
    targets = {"coarse": (torch.randn(3, 2, 4),) * 2, "fine": (torch.randn(3, 5, 4),) * 2}
    for order, expected in ((("1t5", "1t7"), [2, 2, 5, 5]), (("1t7", "1t5"), [5, 5, 2, 2])):
        gathered.clear()
        pairings = {"1t5": ("global", "coarse"), "1t7": ("global", "fine")}
        AMDIMLoss({name: pairings[name] for name in order})(sources, targets)
        assert gathered == expected, order


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pairings": {}}, "at least one"),
        ({"clip": 0.0}, "tanh clip"),
        ({"clip": float("nan")}, "tanh clip"),
        ({"penalty_weight": -1.0}, "score penalty"),
    ],
)
def test_bad_loss_settings_are_refused(kwargs, message):
    settings = {"pairings": {"1t5": ("global", "coarse")}} | kwargs
    with pytest.raises(ConfigurationError, match=message):
        AMDIMLoss(**settings)
