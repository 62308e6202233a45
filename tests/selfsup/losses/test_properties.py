"""The contrastive losses and MI bounds at extreme but legal inputs, against float64 references.

Temperatures 1e-3..10, embedding norms 1e-30..1e30, critic scores up to 1e4 in magnitude:
every value and gradient must be finite and agree with the formula computed in float64.
"""

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfsup.components.critics import PriorMatching
from selfsup.losses import (
    MINE,
    InfoNCELoss,
    MutualInformationLoss,
    NTXentLoss,
    donsker_varadhan_mi,
    info_nce_mi,
    jensen_shannon_mi,
)
from selfsup.losses.infomax import InfoMaxLoss
from selfsup.losses.mutual_information import log_mean_exp

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)

seeds = st.integers(0, 2**31 - 1)
temperatures = st.floats(-3, 1).map(lambda exponent: 10.0**exponent)


def embeddings(generator: torch.Generator, rows: int, dim: int, spread: float = 30.0) -> torch.Tensor:
    """Gaussian rows in float64, each scaled by 10^u with u uniform in [-spread, spread]."""
    scales = 10.0 ** ((2 * torch.rand(rows, 1, generator=generator, dtype=torch.float64) - 1) * spread)
    return torch.randn(rows, dim, generator=generator, dtype=torch.float64) * scales


def scores(generator: torch.Generator, shape: tuple[int, ...], offset: float, scale: float) -> torch.Tensor:
    """Critic scores ``offset + scale * N(0, 1)`` in float32, with leaves that take gradients."""
    values = offset + scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    return values.float().requires_grad_()


def logsumexp64(values: np.ndarray, axis=None) -> np.ndarray:
    """log sum exp in float64, shifted by the maximum."""
    top = np.max(values, axis=axis, keepdims=True)
    total = np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True)) + top
    return total.squeeze() if axis is None else np.squeeze(total, axis=axis)


def unit64(rows: torch.Tensor) -> np.ndarray:
    rows = rows.detach().double().numpy()
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def nt_xent_reference(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> float:
    """SimCLR eq. (1) over the full 2N x 2N cosine matrix, float64, self-similarity excluded."""
    views = unit64(torch.cat([z_a, z_b]))
    count = len(z_a)
    logits = views @ views.T / temperature
    np.fill_diagonal(logits, -np.inf)
    partner = np.concatenate([np.arange(count, 2 * count), np.arange(count)])
    return float(np.mean(logsumexp64(logits, axis=1) - logits[np.arange(2 * count), partner]))


def info_nce_reference(queries, positives, negatives, temperature: float) -> float:
    """MoCo eq. (1) in float64."""
    queries, positives, negatives = unit64(queries), unit64(positives), unit64(negatives)
    logits = np.concatenate([np.sum(queries * positives, axis=1, keepdims=True), queries @ negatives.T], axis=1)
    logits /= temperature
    return float(np.mean(logsumexp64(logits, axis=1) - logits[:, 0]))


def contrastive_bounds(negatives: int, temperature: float) -> tuple[float, float]:
    """With cosines in [-1, 1]: log(1 + K e^(-2/T)) <= loss <= log(1 + K e^(2/T))."""
    return (
        float(np.logaddexp(0.0, math.log(negatives) - 2 / temperature)),
        float(np.logaddexp(0.0, math.log(negatives) + 2 / temperature)),
    )


def float32_tolerance(temperature: float, dim: int) -> float:
    """Float32 cosines are off by ~dim * 6e-8, the logits by that over T."""
    return 1e-5 + 2e-7 * dim / temperature


@st.composite
def view_pairs(draw):
    """Two views of N images in float32, of norms 10^-30..10^30, the second a rescaled, perturbed first."""
    generator = torch.Generator().manual_seed(draw(seeds))
    count, dim = draw(st.integers(2, 64)), draw(st.integers(1, 32))
    z_a = embeddings(generator, count, dim, spread=draw(st.floats(0, 30)))
    noise = draw(st.floats(0, 2)) * torch.randn(count, dim, generator=generator, dtype=torch.float64) / dim**0.5
    z_b = (z_a + z_a.norm(dim=1, keepdim=True) * noise) * 10.0 ** (
        12 * torch.rand(count, 1, generator=generator, dtype=torch.float64) - 6
    )
    return z_a.float().requires_grad_(), z_b.clamp(-1e37, 1e37).float().requires_grad_()


@PROPERTY
@given(view_pairs(), temperatures)
def test_nt_xent_is_the_float64_formula_within_its_bounds_with_finite_gradients(views, temperature):
    """The value researchers read is eq. (1) of SimCLR at any T in [1e-3, 10] and any float32 embedding norm.

    Norms beyond ~1e19 (or below ~1e-19) used to overflow (underflow) in F.normalize: the loss was
    silently log(2N - 1) with zero gradient, or computed on vectors that were not unit.
    """
    z_a, z_b = views
    loss = NTXentLoss(temperature)(z_a, z_b)
    loss.backward()
    tolerance = float32_tolerance(temperature, z_a.shape[1])
    lower, upper = contrastive_bounds(2 * len(z_a) - 2, temperature)
    assert loss.item() == pytest.approx(nt_xent_reference(z_a, z_b, temperature), rel=1e-5, abs=tolerance)
    assert lower - tolerance <= loss.item() <= upper + tolerance
    assert torch.isfinite(z_a.grad).all() and torch.isfinite(z_b.grad).all()


@PROPERTY
@given(view_pairs(), temperatures, seeds)
def test_nt_xent_ignores_the_order_of_the_batch_and_of_the_two_views(views, temperature, seed):
    """Shuffling the images (both views alike) or swapping the views leaves the mean loss unchanged."""
    z_a, z_b = (view.detach() for view in views)
    order = torch.randperm(len(z_a), generator=torch.Generator().manual_seed(seed))
    loss = NTXentLoss(temperature)
    tolerance = float32_tolerance(temperature, z_a.shape[1])
    assert loss(z_a[order], z_b[order]).item() == pytest.approx(loss(z_a, z_b).item(), rel=1e-5, abs=tolerance)
    assert loss(z_b, z_a).item() == pytest.approx(loss(z_a, z_b).item(), rel=1e-5, abs=tolerance)


@st.composite
def moco_batches(draw):
    generator = torch.Generator().manual_seed(draw(seeds))
    count, negatives, dim = draw(st.integers(1, 64)), draw(st.integers(1, 128)), draw(st.integers(1, 32))
    spread = draw(st.floats(0, 30))
    rows = (count, count, negatives)
    return tuple(embeddings(generator, size, dim, spread).float().requires_grad_() for size in rows)


@PROPERTY
@given(moco_batches(), temperatures)
def test_info_nce_is_the_float64_formula_within_its_bounds_with_finite_gradients(batch, temperature):
    """MoCo's loss at any T in [1e-3, 10] and any float32 norm of queries and keys: eq. (1) of He et al."""
    loss = InfoNCELoss(temperature)(*batch)
    loss.backward()
    tolerance = float32_tolerance(temperature, batch[0].shape[1])
    lower, upper = contrastive_bounds(len(batch[2]), temperature)
    assert loss.item() == pytest.approx(info_nce_reference(*batch, temperature), rel=1e-5, abs=tolerance)
    assert lower - tolerance <= loss.item() <= upper + tolerance
    assert all(torch.isfinite(tensor.grad).all() for tensor in batch)


@PROPERTY
@given(moco_batches(), temperatures, seeds)
def test_info_nce_ignores_the_order_of_queries_and_of_the_queue(batch, temperature, seed):
    """Shuffling query-key pairs together, or the negatives in the queue, leaves the loss unchanged."""
    queries, positives, negatives = (tensor.detach() for tensor in batch)
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.randperm(len(queries), generator=generator)
    queue = torch.randperm(len(negatives), generator=generator)
    loss = InfoNCELoss(temperature)
    expected = loss(queries, positives, negatives).item()
    tolerance = float32_tolerance(temperature, queries.shape[1])
    assert loss(queries[pairs], positives[pairs], negatives[queue]).item() == pytest.approx(
        expected, rel=1e-5, abs=tolerance
    )


@st.composite
def critic_scores(draw):
    """Positive (..., N) and negative (..., N, K) scores of magnitude up to ~1e4, with 0 to 2 leading dims."""
    generator = torch.Generator().manual_seed(draw(seeds))
    leading = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    count, negatives = draw(st.integers(1, 32), label="N"), draw(st.integers(1, 32), label="K")
    offset, scale = draw(st.floats(-5e3, 5e3)), 10.0 ** draw(st.floats(-3, 3.5))
    shift = draw(st.floats(-5e3, 5e3))
    positive = scores(generator, (*leading, count), offset + shift, scale)
    negative = scores(generator, (*leading, count, negatives), offset, scale)
    return positive, negative


def score_tolerance(*tensors: torch.Tensor) -> float:
    """Float32 scores of magnitude M carry an error of about M * 1e-7."""
    return 1e-5 + 1e-6 * max(tensor.detach().abs().max().item() for tensor in tensors)


@PROPERTY
@given(critic_scores())
def test_mi_estimators_are_their_float64_closed_forms_with_finite_gradients(pair):
    """JSD, DV and InfoNCE at scores up to 1e4: no overflow (DV's log-mean-exp), the textbook value, finite grads."""
    positive, negative = pair
    p, n = positive.detach().double().numpy(), negative.detach().double().numpy()
    references = {
        jensen_shannon_mi: 2 * math.log(2) - np.mean(np.logaddexp(0, -p)) - np.mean(np.logaddexp(0, n)),
        donsker_varadhan_mi: np.mean(p) - (logsumexp64(n) - math.log(n.size)),
        info_nce_mi: np.mean(p - logsumexp64(np.concatenate([p[..., None], n], axis=-1), axis=-1))
        + math.log(n.shape[-1] + 1),
    }
    tolerance = score_tolerance(positive, negative)
    for estimator, expected in references.items():
        positive.grad = negative.grad = None
        estimate = estimator(positive, negative)
        estimate.backward()
        assert estimate.item() == pytest.approx(expected, rel=1e-5, abs=tolerance), estimator.__name__
        assert torch.isfinite(positive.grad).all() and torch.isfinite(negative.grad).all(), estimator.__name__


@PROPERTY
@given(critic_scores())
def test_jsd_and_info_nce_never_exceed_their_ceilings(pair):
    """JSD <= 2 ln 2 and InfoNCE <= ln(K + 1), however confident the critic: the bounds a researcher plots against."""
    positive, negative = pair
    assert jensen_shannon_mi(positive, negative).item() <= 2 * math.log(2) + 1e-6
    assert info_nce_mi(positive, negative).item() <= math.log(negative.shape[-1] + 1) + 1e-6


@PROPERTY
@given(critic_scores())
def test_log_mean_exp_is_the_float64_value(pair):
    _, negative = pair
    expected = logsumexp64(negative.detach().double().numpy()) - math.log(negative.numel())
    assert log_mean_exp(negative).item() == pytest.approx(expected, rel=1e-6, abs=score_tolerance(negative))


@PROPERTY
@given(
    st.lists(st.tuples(st.floats(-1e4, 1e4), st.floats(-3, 3)), min_size=1, max_size=8),
    st.floats(0.001, 1.0),
    seeds,
)
def test_dv_bias_correction_follows_its_float64_moving_average_and_stays_bounded(batches, ema_rate, seed):
    """MINE's corrected DV gradient over batches whose scores jump by up to 2e4 between steps.

    The moving average of E_Q[e^T] is the float64 recursion; the loss's value is -estimate;
    the gradient on negative j is exp(log_term - average) * softmax_j, whose weight never
    exceeds 1 / ema_rate (the average includes the newest batch), so it cannot overflow.
    """
    generator = torch.Generator().manual_seed(seed)
    loss_module = MutualInformationLoss("dv", ema_rate).train()
    average = None
    for offset, log_scale in batches:
        positive = scores(generator, (16,), offset, 10.0**log_scale)
        negative = scores(generator, (16, 15), offset, 10.0**log_scale)
        loss, estimate = loss_module(positive, negative)
        loss.backward()
        n = negative.detach().double().numpy().ravel()
        log_term = logsumexp64(n) - math.log(n.size)
        if average is None or ema_rate == 1:
            average = log_term
        else:
            average = float(np.logaddexp(average + math.log1p(-ema_rate), log_term + math.log(ema_rate)))
        weight = math.exp(log_term - average)
        expected_gradient = weight * np.exp(n - logsumexp64(n)).reshape(negative.shape)
        tolerance = score_tolerance(positive, negative)
        assert loss.item() == pytest.approx(-estimate.item(), rel=1e-6, abs=tolerance)
        assert loss_module.log_mean_exp_average.item() == pytest.approx(average, rel=1e-5, abs=tolerance)
        assert weight <= 1 / ema_rate * (1 + 1e-9)
        assert torch.isfinite(negative.grad).all() and torch.isfinite(positive.grad).all()
        np.testing.assert_allclose(negative.grad.numpy(), expected_gradient, rtol=1e-3, atol=1e-5 * weight + 1e-37)


@PROPERTY
@given(critic_scores(), st.sampled_from(["jsd", "dv", "infonce"]))
def test_mi_loss_in_evaluation_is_minus_the_estimate(pair, estimator):
    positive, negative = pair
    loss, estimate = MutualInformationLoss(estimator).eval()(positive, negative)
    assert torch.isfinite(loss) and loss.item() == -estimate.item()


@PROPERTY
@given(seeds, st.integers(2, 48), st.floats(-3, 3), st.floats(0, 1))
def test_mine_estimate_is_the_dv_bound_of_its_critic_and_trains_with_finite_gradients(seed, count, log_scale, coupling):
    """Inputs scaled by 1e-3..1e3: the estimate is E_P[T] - log E_Q[e^T] of the critic, in float64."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mine = MINE(3, 2, hidden_dim=16)
    x = torch.randn(count, 3, generator=generator) * 10.0**log_scale
    z = coupling * x[:, :2] + torch.randn(count, 2, generator=generator) * 10.0**log_scale
    torch.manual_seed(seed)
    shuffled = z[torch.randperm(count)]
    with torch.no_grad():
        joint = mine.critic(x, z).double().numpy()
        marginal = mine.critic(x, shuffled).double().numpy()
    expected = np.mean(joint) - (logsumexp64(marginal) - math.log(count))
    torch.manual_seed(seed)
    estimate = mine.estimate(x, z)
    assert estimate.item() == pytest.approx(expected, rel=1e-5, abs=score_tolerance(torch.from_numpy(joint)))
    for _ in range(3):
        loss, _ = mine(x, z)
        loss.backward()
        assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in mine.parameters())


@st.composite
def infomax_batches(draw):
    generator = torch.Generator().manual_seed(draw(seeds))
    count, dim = draw(st.integers(2, 32)), draw(st.integers(1, 8))
    locations = draw(st.sampled_from([None, 1, 3]))
    query_shape = (count, dim) if locations is None else (count, locations, dim)
    scale = 10.0 ** draw(st.floats(-3, 1.5))
    queries = (torch.randn(query_shape, generator=generator) * scale).requires_grad_()
    keys = (torch.randn(count, dim, generator=generator) * scale).requires_grad_()
    return queries, keys


@PROPERTY
@given(infomax_batches(), st.sampled_from(["jsd", "dv", "infonce"]))
def test_infomax_estimate_is_the_closed_form_on_the_batch_score_matrix(batch, estimator):
    """Deep InfoMax's term: the estimator on S = a(x) b(y)^T (diagonal positive), InfoNCE <= ln N, finite grads."""
    queries, keys = batch
    loss, estimate = InfoMaxLoss(estimator).eval()(queries, keys)
    loss.backward()
    count = len(keys)
    matrix = queries.detach().double().numpy() @ keys.detach().double().numpy().T
    matrix = matrix if matrix.ndim == 2 else matrix.transpose(1, 0, 2)
    positive = np.diagonal(matrix, axis1=-2, axis2=-1)
    negative = matrix[..., ~np.eye(count, dtype=bool)].reshape(*matrix.shape[:-2], count, count - 1)
    if estimator == "jsd":
        expected = 2 * math.log(2) - np.mean(np.logaddexp(0, -positive)) - np.mean(np.logaddexp(0, negative))
    elif estimator == "dv":
        expected = np.mean(positive) - (logsumexp64(negative) - math.log(negative.size))
    else:
        expected = np.mean(positive - logsumexp64(matrix, axis=-1)) + math.log(count)
        assert estimate.item() <= math.log(count) + 1e-6
    assert estimate.item() == pytest.approx(expected, rel=1e-5, abs=1e-5 + 1e-6 * np.abs(matrix).max())
    assert torch.isfinite(queries.grad).all() and torch.isfinite(keys.grad).all()


@PROPERTY
@given(infomax_batches(), st.sampled_from(["jsd", "infonce"]), seeds)
def test_infomax_ignores_the_order_of_the_batch(batch, estimator, seed):
    """Shuffling the images (queries and keys alike) leaves the estimate unchanged."""
    queries, keys = (tensor.detach() for tensor in batch)
    order = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed))
    loss = InfoMaxLoss(estimator).eval()
    tolerance = 1e-5 + 1e-6 * (queries.abs().max() * keys.abs().max()).item() * keys.shape[1]
    assert loss(queries[order], keys[order])[1].item() == pytest.approx(
        loss(queries, keys)[1].item(), rel=1e-5, abs=tolerance
    )


@PROPERTY
@given(seeds, st.integers(1, 32), st.floats(-2, 4), st.floats(0, 3))
def test_prior_matching_losses_are_their_softplus_forms_at_saturated_logits(seed, count, log_scale, log_gain):
    """Encodings up to 1e4 (sigmoid saturates) and discriminator logits up to ~1e3: finite losses and grads.

    discriminator = E_prior[softplus(-D)] + E_code[softplus(D)], encoder = E_code[softplus(-D)], in float64.
    """
    torch.manual_seed(seed)
    matching = PriorMatching(6, hidden_dims=(16, 8))
    with torch.no_grad():
        matching.discriminator[-1].weight.mul_(10.0**log_gain)
    encoding = (torch.randn(count, 6, generator=torch.Generator().manual_seed(seed)) * 10.0**log_scale).requires_grad_()
    torch.manual_seed(seed)
    encoder_loss, discriminator_loss = matching(encoding)
    (encoder_loss + discriminator_loss).backward()

    torch.manual_seed(seed)
    prior = torch.rand(count, 6).double()
    discriminator = copy.deepcopy(matching.discriminator).double()
    with torch.no_grad():
        code_logits = discriminator(torch.sigmoid(encoding.detach().double())).numpy()
        prior_logits = discriminator(prior).numpy()
    expected_discriminator = np.mean(np.logaddexp(0, -prior_logits)) + np.mean(np.logaddexp(0, code_logits))
    expected_encoder = np.mean(np.logaddexp(0, -code_logits))
    tolerance = 1e-5 + 1e-6 * max(np.abs(code_logits).max(), np.abs(prior_logits).max())
    assert discriminator_loss.item() == pytest.approx(expected_discriminator, rel=1e-4, abs=tolerance)
    assert encoder_loss.item() == pytest.approx(expected_encoder, rel=1e-4, abs=tolerance)
    assert torch.isfinite(encoding.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in matching.discriminator.parameters())
