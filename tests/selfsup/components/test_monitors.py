"""The online monitors on their own: the probe's loss, the kNN monitor and the named feature store."""

import torch

from selfsup.components.monitors import KNNMonitor, OnlineLinearProbe, ValidationFeatures
from selfsup.evaluation import weighted_knn_predict


def test_probe_ignores_unlabelled_rows_and_says_so_when_all_are():
    probe = OnlineLinearProbe(4, 3)
    features = torch.randn(5, 4)
    loss, accuracy = probe.loss_and_accuracy(features, torch.tensor([0, -1, 2, -1, 1]))
    expected = torch.nn.functional.cross_entropy(probe(features[[0, 2, 4]]), torch.tensor([0, 2, 1]))
    assert torch.allclose(loss, expected) and 0 <= accuracy <= 1
    assert probe.loss_and_accuracy(features, torch.full((5,), -1)) is None


def test_knn_monitor_is_the_weighted_knn_accuracy():
    generator = torch.Generator().manual_seed(0)
    bank = (torch.randn(50, 8, generator=generator), torch.randint(0, 4, (50,), generator=generator))
    queries = (torch.randn(20, 8, generator=generator), torch.randint(0, 4, (20,), generator=generator))
    predicted = weighted_knn_predict(*bank, queries[0], 4, 5, 0.1)
    expected = (predicted == queries[1]).float().mean()
    assert KNNMonitor(4, k=5, temperature=0.1).accuracy(bank, queries) == expected


def test_validation_features_come_back_per_name_in_index_order_without_duplicates():
    store = ValidationFeatures(("knn_bank", "knn_queries"))
    store.add("knn_bank", torch.tensor([[2.0], [0.0]]), torch.tensor([2, 0]), torch.tensor([2, 0]))
    assert not store.complete()
    store.add("knn_queries", torch.tensor([[9.0]]), torch.tensor([1]), torch.tensor([0]))
    store.add("knn_bank", torch.tensor([[1.0], [2.0]]), torch.tensor([1, 2]), torch.tensor([1, 2]))
    assert store.complete()
    features, labels = store.gathered("knn_bank")
    assert features.flatten().tolist() == [0.0, 1.0, 2.0] and labels.tolist() == [0, 1, 2]
    store.reset()
    assert not store.complete()
