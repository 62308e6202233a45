import pytest
import torch

from selfsup.evaluation import weighted_knn_predict


def test_separable_clusters_are_classified_exactly():
    torch.manual_seed(0)
    centres = torch.eye(4) * 10
    bank = torch.cat([centres[c] + torch.randn(25, 4) * 0.1 for c in range(4)])
    bank_labels = torch.arange(4).repeat_interleave(25)
    queries = torch.cat([centres[c] + torch.randn(10, 4) * 0.1 for c in range(4)])
    predictions = weighted_knn_predict(bank, bank_labels, queries, num_classes=4, k=20, chunk_size=7)
    assert torch.equal(predictions, torch.arange(4).repeat_interleave(10))


def test_votes_are_weighted_by_similarity():
    # Two neighbours of class 1 at cos 0.6 against one of class 0 at cos 1.0, temperature 0.1:
    # class 0 scores e^10, class 1 scores 2 e^6 -> class 0 wins; an unweighted vote would pick 1.
    bank = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.0]])
    assert weighted_knn_predict(bank, labels, query, num_classes=2, k=3, temperature=0.1).item() == 0
    assert weighted_knn_predict(bank, labels, query, num_classes=2, k=3, temperature=100.0).item() == 1


@pytest.mark.parametrize("temperature", [1e-3, 5e-3, 0.01, 0.05, 1.0])
def test_low_temperatures_do_not_overflow_and_agree_with_moderate_ones(temperature):
    """Below T = 0.011 the unshifted exp(cos / T) overflows float32 and every prediction became class 0."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(5, 16, generator=generator), dim=1) * 5
    bank = torch.cat([centres[c] + 0.3 * torch.randn(30, 16, generator=generator) for c in range(5)])
    bank_labels = torch.arange(5).repeat_interleave(30)
    queries = torch.cat([centres[c] + 0.3 * torch.randn(12, 16, generator=generator) for c in range(5)])
    truth = torch.arange(5).repeat_interleave(12)
    predicted = weighted_knn_predict(bank, bank_labels, queries, num_classes=5, k=20, temperature=temperature)
    moderate = weighted_knn_predict(bank, bank_labels, queries, num_classes=5, k=20, temperature=0.05)
    assert torch.equal(predicted, moderate) and torch.equal(predicted, truth)


def test_at_vanishing_temperature_the_nearest_neighbour_decides():
    bank = torch.tensor([[1.0, 0.0], [0.99, 0.141], [0.98, -0.199]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.0]])
    assert weighted_knn_predict(bank, labels, query, num_classes=2, k=3, temperature=1e-4).item() == 0
