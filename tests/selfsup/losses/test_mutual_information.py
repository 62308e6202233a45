"""The three MI bounds against their closed forms, bounds and a hand computation."""

import math

import pytest
import torch

from selfsup.errors import ConfigurationError
from selfsup.losses import MutualInformationLoss, donsker_varadhan_mi, info_nce_mi, jensen_shannon_mi, split_scores

LOG_4 = 2 * math.log(2)


def gaussian_log_density(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return torch.distributions.Normal(mean, std).log_prob(x)


def correlated_gaussians(count: int, dim: int, rho: float, generator: torch.Generator):
    x = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    z = rho * x + math.sqrt(1 - rho**2) * torch.randn(count, dim, generator=generator, dtype=torch.float64)
    return x, z


def optimal_critic(x: torch.Tensor, z: torch.Tensor, rho: float) -> torch.Tensor:
    """log p(x, z) / (p(x) p(z)) for standard normals with corr(x_i, z_i) = rho."""
    quadratic = (rho**2 * x**2 - 2 * rho * x * z + rho**2 * z**2) / (2 * (1 - rho**2))
    return (-0.5 * math.log(1 - rho**2) - quadratic).sum(dim=1)


def test_jensen_shannon_is_zero_for_the_uninformative_critic():
    positive, negative = torch.zeros(7, dtype=torch.float64), torch.zeros(7, 6, dtype=torch.float64)
    assert jensen_shannon_mi(positive, negative).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("constant", [-3.0, -0.5, 0.5, 3.0])
def test_jensen_shannon_of_any_other_constant_critic_is_negative(constant):
    positive, negative = torch.full((5,), constant), torch.full((5, 4), constant)
    assert jensen_shannon_mi(positive, negative).item() < 0


def test_jensen_shannon_never_exceeds_2_ln_2_and_reaches_it_for_a_perfect_critic():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        scale = 10 * torch.rand((), generator=generator)
        positive = scale * torch.randn(16, generator=generator, dtype=torch.float64)
        negative = scale * torch.randn(16, 15, generator=generator, dtype=torch.float64)
        assert jensen_shannon_mi(positive, negative).item() <= LOG_4
    perfect = jensen_shannon_mi(
        torch.full((4,), 40.0, dtype=torch.float64), torch.full((4, 3), -40.0, dtype=torch.float64)
    )
    assert perfect.item() == pytest.approx(LOG_4, abs=1e-12)


def test_info_nce_matches_a_hand_computation():
    positive = torch.tensor([2.0, 0.0])
    negative = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    row_0 = 2 - math.log(math.exp(2) + math.exp(1) + 1)
    row_1 = 0 - math.log(1 + 1 + math.exp(3))
    expected = (row_0 + row_1) / 2 + math.log(3)
    assert info_nce_mi(positive, negative).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_never_exceeds_log_batch_size():
    generator = torch.Generator().manual_seed(0)
    batch = 12
    for _ in range(200):
        scores = 20 * torch.randn(batch, batch, generator=generator)
        estimate = info_nce_mi(*split_scores(scores, torch.arange(batch)))
        assert estimate.item() <= math.log(batch) + 1e-6
    perfect = 100 * torch.eye(batch)
    assert info_nce_mi(*split_scores(perfect, torch.arange(batch))).item() == pytest.approx(math.log(batch))


def test_donsker_varadhan_equals_the_kl_between_two_gaussians_with_the_optimal_critic():
    """T = log p/q makes the bound tight: E_p[T] - log E_q[p/q] = KL(p || q) - log 1."""
    generator = torch.Generator().manual_seed(0)
    mean_p, std_p, mean_q, std_q = 0.5, 0.8, -0.3, 1.2
    kl = math.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5
    samples_p = mean_p + std_p * torch.randn(1_000_000, generator=generator, dtype=torch.float64)
    samples_q = mean_q + std_q * torch.randn(1_000_000, generator=generator, dtype=torch.float64)

    def critic(x):
        return gaussian_log_density(x, mean_p, std_p) - gaussian_log_density(x, mean_q, std_q)

    assert donsker_varadhan_mi(critic(samples_p), critic(samples_q)).item() == pytest.approx(kl, rel=0.01)
    # The bound is invariant to a constant shift and looser for any other critic.
    assert donsker_varadhan_mi(critic(samples_p) + 5, critic(samples_q) + 5).item() == pytest.approx(kl, rel=0.01)
    assert donsker_varadhan_mi(0.5 * critic(samples_p), 0.5 * critic(samples_q)).item() < 0.95 * kl


@pytest.mark.parametrize(("dim", "rho"), [(1, 0.5), (1, 0.8), (5, 0.5)])
def test_donsker_varadhan_equals_the_gaussian_mutual_information_with_the_optimal_critic(dim, rho):
    generator = torch.Generator().manual_seed(1)
    truth = -dim / 2 * math.log(1 - rho**2)
    x, z = correlated_gaussians(1_000_000, dim, rho, generator)
    x_independent, z_independent = correlated_gaussians(1_000_000, dim, 0.0, generator)
    positive, negative = optimal_critic(x, z, rho), optimal_critic(x_independent, z_independent, rho)
    assert donsker_varadhan_mi(positive, negative).item() == pytest.approx(truth, rel=0.02)


def test_leading_dimensions_are_averaged_like_separate_estimates():
    generator = torch.Generator().manual_seed(0)
    positive, negative = torch.randn(3, 8, generator=generator), torch.randn(3, 8, 7, generator=generator)
    for estimator in (jensen_shannon_mi, info_nce_mi):
        separate = torch.stack([estimator(positive[i], negative[i]) for i in range(3)]).mean()
        torch.testing.assert_close(estimator(positive, negative), separate)


def test_split_scores_takes_the_named_column_as_positive():
    scores = torch.arange(12.0).view(2, 6)
    positive, negative = split_scores(scores, torch.tensor([2, 3]))
    assert positive.tolist() == [2.0, 9.0]
    assert negative.tolist() == [[0.0, 1.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 10.0, 11.0]]
    stacked = split_scores(torch.stack([scores, -scores]), torch.tensor([2, 3]))
    assert stacked[0].tolist() == [[2.0, 9.0], [-2.0, -9.0]]


@pytest.mark.parametrize("estimator", ["jsd", "dv", "infonce"])
def test_loss_is_minus_the_estimate(estimator):
    positive, negative = torch.randn(6), torch.randn(6, 5)
    loss, estimate = MutualInformationLoss(estimator)(positive, negative)
    assert loss.item() == pytest.approx(-estimate.item(), rel=1e-6)


def test_dv_gradient_divides_by_the_moving_average_instead_of_the_batch_value():
    """MINE's correction: grad = -(grad E_P[T] - grad E_Q[e^T] / average of E_Q[e^T])."""
    criterion = MutualInformationLoss("dv", ema_rate=0.25)
    first_negative = torch.tensor([0.0, 1.0, 2.0])
    criterion(torch.zeros(3), first_negative)  # initialises the average to this batch's value
    positive = torch.tensor([0.5, -0.5, 1.0], requires_grad=True)
    negative = torch.tensor([1.0, -1.0, 0.5], requires_grad=True)
    criterion(positive, negative)[0].backward()

    average = 0.75 * first_negative.exp().mean() + 0.25 * negative.detach().exp().mean()
    assert criterion.log_mean_exp_average.item() == pytest.approx(average.log().item(), rel=1e-6)
    torch.testing.assert_close(positive.grad, torch.full((3,), -1 / 3))
    torch.testing.assert_close(negative.grad, negative.detach().exp() / 3 / average)


def test_dv_without_correction_has_the_plain_gradient():
    positive = torch.randn(5, requires_grad=True)
    negative = torch.randn(5, requires_grad=True)
    MutualInformationLoss("dv", ema_rate=1.0)(positive, negative)[0].backward()
    plain_positive, plain_negative = positive.detach().requires_grad_(), negative.detach().requires_grad_()
    (-donsker_varadhan_mi(plain_positive, plain_negative)).backward()
    torch.testing.assert_close(positive.grad, plain_positive.grad)
    torch.testing.assert_close(negative.grad, plain_negative.grad)


def test_dv_moving_average_survives_a_state_dict_round_trip():
    criterion = MutualInformationLoss("dv")
    criterion(torch.randn(4), torch.randn(4, 3))
    restored = MutualInformationLoss("dv")
    restored.load_state_dict(criterion.state_dict())
    assert restored.log_mean_exp_average.item() == criterion.log_mean_exp_average.item()


def test_bad_estimator_settings_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="unknown MI estimator 'nce'"):
        MutualInformationLoss("nce")
    with pytest.raises(ConfigurationError, match=r"\(0, 1\]"):
        MutualInformationLoss("dv", ema_rate=0.0)
