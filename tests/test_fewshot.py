"""The demo's claim: a SimCLR backbone pretrained on digits beats random initialisation."""

import statistics

import pytest
import pytorch_lightning as pl
import torch

from downstream.fewshot import evaluate, markdown_table
from downstream.linear import LinearProbe
from downstream.splits import balanced_subset
from selfsup.data import DigitsDataModule
from selfsup.methods import MoCo, SimCLR
from tests.trainers import quiet_trainer


def test_balanced_subset_is_deterministic_and_balanced():
    labels = torch.arange(5).repeat(20)
    first = balanced_subset(labels, 3, seed=1)
    assert torch.equal(first, balanced_subset(labels, 3, seed=1))
    assert not torch.equal(first, balanced_subset(labels, 3, seed=2))
    assert torch.bincount(labels[first]).tolist() == [3] * 5
    with pytest.raises(ValueError, match="fewer than"):
        balanced_subset(labels, 21, seed=0)


def test_linear_probe_separates_linearly_separable_data():
    torch.manual_seed(0)
    features = torch.randn(200, 5)
    labels = (features[:, 0] + 0.5 * features[:, 3] > 0).long()
    probe = LinearProbe(num_classes=2, weight_decay=1e-4).fit(features, labels)
    assert (probe.predict(features) == labels).float().mean() > 0.98


METHODS = {
    "simclr": lambda: SimCLR(backbone="small_conv", backbone_kwargs={"width": 32}, projection_dim=64, warmup_epochs=2),
    "moco": lambda: MoCo(
        backbone="small_conv",
        backbone_kwargs={"width": 32},
        projection_dim=64,
        queue_size=1024,
        encoder_momentum=0.99,
        encoder_momentum_schedule="cosine",
        split_bn_groups=4,
        weight_decay=1e-4,
        warmup_epochs=2,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_pretrained_backbone_beats_random_init_by_more_than_the_seed_spread(tmp_path, method):
    pl.seed_everything(0)
    model = METHODS[method]()
    trainer = quiet_trainer(tmp_path, max_epochs=15)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=128))
    seeds = [0, 1, 2]
    rows = evaluate({method: str(tmp_path / "backbone.pt")}, per_class=10, seeds=seeds, knn_k=20, knn_temperature=0.07)
    print(markdown_table(rows, 10, seeds))
    pretrained, random = rows[method], rows["random init (small_conv, 16px)"]
    for protocol in ("knn", "linear"):
        margin = statistics.mean(pretrained[protocol]) - statistics.mean(random[protocol])
        spread = max(statistics.stdev(pretrained[protocol]), statistics.stdev(random[protocol]))
        assert margin > spread, (protocol, margin, spread)
