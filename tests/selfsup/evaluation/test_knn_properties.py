"""Weighted kNN and the online monitors at extreme but legal settings, and on features that are not numbers."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfsup.components.monitors import KNNMonitor, OnlineLinearProbe
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.evaluation import weighted_knn_predict
from selfsup.methods import SimCLR

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)

seeds = st.integers(0, 2**31 - 1)
temperatures = st.floats(-3, 1).map(lambda exponent: 10.0**exponent)


def features(generator: torch.Generator, rows: int, dim: int, spread: float) -> torch.Tensor:
    """Gaussian rows in float32, each scaled by 10^u with u uniform in [-spread, spread]."""
    scales = 10.0 ** ((2 * torch.rand(rows, 1, generator=generator, dtype=torch.float64) - 1) * spread)
    return (torch.randn(rows, dim, generator=generator, dtype=torch.float64) * scales).float()


def reference_votes(bank, labels, queries, num_classes: int, k: int, temperature: float) -> np.ndarray:
    """Wu et al. eq. (7) in float64: the k most similar bank rows vote exp(cos / T), shifted by the top cos."""
    bank = bank.double().numpy()
    queries = queries.double().numpy()
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    similarity = queries @ bank.T
    votes = np.zeros((len(queries), num_classes))
    for row, scores in enumerate(similarity):
        nearest = np.argsort(-scores, kind="stable")[: min(k, len(bank))]
        np.add.at(votes[row], labels.numpy()[nearest], np.exp((scores[nearest] - scores[nearest[0]]) / temperature))
    return votes


@st.composite
def knn_problems(draw):
    generator = torch.Generator().manual_seed(draw(seeds))
    bank_size, dim, num_classes = draw(st.integers(1, 64)), draw(st.integers(2, 16)), draw(st.integers(1, 6))
    spread = draw(st.floats(0, 15))
    bank = features(generator, bank_size, dim, spread)
    labels = torch.randint(0, num_classes, (bank_size,), generator=generator)
    queries = features(generator, draw(st.integers(1, 20)), dim, spread)
    return bank, labels, queries, num_classes


@PROPERTY
@given(knn_problems(), st.integers(1, 80), temperatures)
def test_prediction_is_a_top_class_of_the_float64_vote(problem, k, temperature):
    """Every prediction is a class with the largest weighted vote, in float64, at any k and T in [1e-3, 10]."""
    bank, labels, queries, num_classes = problem
    predicted = weighted_knn_predict(bank, labels, queries, num_classes, k=k, temperature=temperature, chunk_size=7)
    votes = reference_votes(bank, labels, queries, num_classes, k, temperature)
    chosen = votes[np.arange(len(votes)), predicted.numpy()]
    assert np.all(chosen >= votes.max(axis=1) * (1 - 1e-3))


@PROPERTY
@given(knn_problems(), st.integers(0, 50), temperatures)
def test_k_beyond_the_bank_is_clamped_to_the_whole_bank(problem, extra, temperature):
    """k larger than the bank lets every bank row vote, exactly as k = bank size does (documented)."""
    bank, labels, queries, num_classes = problem
    everyone = weighted_knn_predict(bank, labels, queries, num_classes, k=len(bank), temperature=temperature)
    beyond = weighted_knn_predict(bank, labels, queries, num_classes, k=len(bank) + extra, temperature=temperature)
    assert torch.equal(everyone, beyond)


@PROPERTY
@given(knn_problems(), st.integers(1, 80), temperatures, seeds)
def test_predictions_ignore_the_norm_of_features_and_the_order_of_the_bank(problem, k, temperature, seed):
    """Cosine kNN: rescaling any row by 10^-15..10^15 or shuffling the bank does not change a prediction.

    Rows of norm below 1e-12 (F.normalize's eps) or above ~1e19 (the squares overflow) used to
    come back not unit, or zero.
    """
    bank, labels, queries, num_classes = problem
    generator = torch.Generator().manual_seed(seed)
    votes = reference_votes(bank, labels, queries, num_classes, k, temperature)
    margin = np.sort(votes, axis=1)
    clear = margin[:, -1] > margin[:, -2] * 1.01 if num_classes > 1 else np.ones(len(votes), dtype=bool)
    order = torch.randperm(len(bank), generator=generator)
    scaled_bank = bank[order] * 10.0 ** (30 * torch.rand(len(bank), 1, generator=generator) - 15)
    scaled_queries = queries * 10.0 ** (30 * torch.rand(len(queries), 1, generator=generator) - 15)
    before = weighted_knn_predict(bank, labels, queries, num_classes, k=k, temperature=temperature)
    after = weighted_knn_predict(scaled_bank, labels[order], scaled_queries, num_classes, k=k, temperature=temperature)
    assert torch.equal(before[clear], after[clear])


def test_a_tied_vote_goes_to_the_lowest_class_index_whatever_the_bank_order():
    """Two identical bank rows of classes 2 and 1 tie: class 1 wins, in either order (documented)."""
    bank = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    query = torch.tensor([[1.0, 0.1]])
    for labels in (torch.tensor([2, 1, 0]), torch.tensor([1, 2, 0])):
        assert weighted_knn_predict(bank, labels, query, num_classes=3, k=2).item() == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["bank", "queries"])
def test_non_finite_features_are_refused_naming_how_many_rows(bad, where):
    """A NaN or infinite feature row would otherwise become every query's nearest neighbour and cast a vote."""
    generator = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(30, 4, generator=generator), torch.randn(10, 4, generator=generator)
    (bank if where == "bank" else queries)[[3, 7], 1] = bad
    expected = "2 of 30 bank" if where == "bank" else "2 of 10 query"
    with pytest.raises(ConfigurationError, match=expected):
        weighted_knn_predict(bank, torch.arange(30) % 3, queries, num_classes=3)


def test_an_empty_bank_is_refused_instead_of_predicting_class_zero():
    with pytest.raises(ConfigurationError, match="empty"):
        weighted_knn_predict(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.randn(5, 4), num_classes=3)


@pytest.mark.parametrize("label", [-1, 3])
def test_bank_labels_outside_the_classes_are_refused(label):
    """Label -1 (unlabelled) or >= num_classes cannot vote: refused with the range, not an index error."""
    labels = torch.tensor([0, 1, 2, label])
    with pytest.raises(ConfigurationError, match=r"\[0, 3\)"):
        weighted_knn_predict(torch.randn(4, 4), labels, torch.randn(2, 4), num_classes=3)


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), 0.0, -1.0])
def test_temperature_that_is_not_a_positive_number_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature"):
        weighted_knn_predict(torch.randn(4, 4), torch.arange(4) % 2, torch.randn(2, 4), 2, temperature=temperature)


@pytest.mark.parametrize("where", ["bank", "queries"])
def test_knn_monitor_reports_nan_and_warns_instead_of_crashing_training(where):
    """A diverged backbone during validation: val/knn_acc is NaN, training goes on, the warning counts the rows."""
    generator = torch.Generator().manual_seed(0)
    bank = (torch.randn(20, 4, generator=generator), torch.arange(20) % 2)
    queries = (torch.randn(6, 4, generator=generator), torch.arange(6) % 2)
    (bank if where == "bank" else queries)[0][2] = float("nan")
    expected = "1 of 20 bank" if where == "bank" else "1 of 6 query"
    with pytest.warns(UserWarning, match=expected):
        accuracy = KNNMonitor(2, k=5).accuracy(bank, queries)
    assert torch.isnan(accuracy)


def test_online_probe_accuracy_is_nan_for_non_finite_features_not_a_class_zero_vote():
    """NaN logits have argmax 0: all-class-0 labels would otherwise score 100%."""
    probe = OnlineLinearProbe(4, 3)
    features = torch.randn(5, 4)
    features[1, 0] = float("inf")
    with pytest.warns(UserWarning, match="1 of 5"):
        accuracy = probe.accuracy(features, torch.zeros(5, dtype=torch.long))
    assert torch.isnan(accuracy)
    assert 0 <= probe.accuracy(features[[0, 2, 3, 4]], torch.zeros(4, dtype=torch.long)) <= 1


def test_validation_of_a_diverged_backbone_logs_nan_accuracies_and_returns():
    """Through Lightning's hooks (log_dict with sync_dist): both monitors log NaN, nothing raises."""
    torch.manual_seed(0)
    model = SimCLR(backbone="small_conv", backbone_kwargs={"width": 8}, num_classes=10)
    with torch.no_grad():
        next(model.backbone.parameters()).fill_(float("nan"))
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.warns(UserWarning, match="NaN or infinite"):
        trainer.validate(model, datamodule=DigitsDataModule(batch_size=50, knn_bank_size=100), verbose=False)
    assert torch.isnan(trainer.callback_metrics["val/knn_acc"])
    assert torch.isnan(trainer.callback_metrics["val/linear_acc"])
