"""Few labels, several seeds: the report's mean ± std, the raw-pixels row, and the demo's claim."""

import csv
import statistics

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from downstream.evaluate import evaluate_matrix
from downstream.hardware import Hardware
from downstream.recipes import FinetuneRecipe
from downstream.splits import balanced_subset
from selfsup.data import DigitsDataModule, digits_split, eval_transform
from selfsup.evaluation import weighted_knn_predict
from selfsup.methods import MoCo, SimCLR
from selfsup.runtime import BackboneExport
from tests.helpers import quiet_trainer, random_digits_backbone

CPU = Hardware(accelerator="cpu")


def test_results_csv_has_a_row_per_seed_and_the_table_their_mean_and_sample_std(tmp_path):
    output = tmp_path / "eval"
    seeds = [0, 1, 2]
    evaluate_matrix(
        {"a": random_digits_backbone(tmp_path / "a.pt")},
        {"digits": None},
        protocols=["knn", "logistic"],
        labels_per_class=5,
        seeds=seeds,
        output_dir=str(output),
        hardware=CPU,
    )
    with open(output / "results.csv") as stream:
        rows = list(csv.DictReader(stream))
    by_cell: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        by_cell.setdefault((row["checkpoint"], row["protocol"]), {})[int(row["seed"])] = float(row["value"])
    assert len(rows) == 2 * 2 * len(seeds)  # (a, random init) x (knn, logistic) x seeds
    assert all(sorted(values) == seeds for values in by_cell.values())
    table = (output / "results.md").read_text()
    assert "mean ± std over seeds [0, 1, 2]" in table
    for checkpoint in ("a", "random init (small_conv, 16px)"):
        cells = []
        for protocol in ("knn", "logistic"):
            values = np.array(list(by_cell[(checkpoint, protocol)].values()))
            assert values.std() > 0  # the seeds draw different labelled subsets
            cells.append(f"{values.mean():.1f} ± {values.std(ddof=1):.1f}")
        assert f"| {checkpoint} | {cells[0]} | {cells[1]} |" in table


def test_one_seed_reports_the_value_and_says_so(tmp_path):
    output = tmp_path / "eval"
    results = evaluate_matrix(
        {"a": random_digits_backbone(tmp_path / "a.pt")},
        {"digits": None},
        protocols=["knn"],
        labels_per_class=5,
        random_init_baseline=False,
        output_dir=str(output),
        hardware=CPU,
    )
    table = (output / "results.md").read_text()
    assert "1 seed" in table and "±" not in table
    assert f"| a | {results[0].value:.1f} |" in table


def test_the_raw_pixels_row_is_knn_on_the_flattened_images_and_skips_protocols_that_need_a_backbone(tmp_path):
    seeds = [0, 1]
    results = evaluate_matrix(
        {"a": random_digits_backbone(tmp_path / "a.pt")},
        {"digits": None},
        protocols=["knn", "finetune"],
        labels_per_class=5,
        seeds=seeds,
        random_init_baseline=False,
        raw_pixels_baseline=True,
        finetune=FinetuneRecipe(epochs=1, batch_size=50),
        output_dir=str(tmp_path / "eval"),
        hardware=CPU,
    )
    raw = {(r.protocol, r.seed): r.value for r in results if r.checkpoint == "raw pixels"}
    assert set(raw) == {("knn", seed) for seed in seeds}
    transform = eval_transform(16, DigitsDataModule.mean, DigitsDataModule.std)
    train, test = (digits_split(split, 16) for split in ("train", "test"))
    train_pixels, test_pixels = (
        torch.stack([transform(image) for image in s.images]).flatten(1) for s in (train, test)
    )
    for seed in seeds:
        subset = balanced_subset(train.labels, 5, seed)
        predictions = weighted_knn_predict(train_pixels[subset], train.labels[subset], test_pixels, 10, 20, 0.07)
        assert raw[("knn", seed)] == 100.0 * (predictions == test.labels).float().mean().item()


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
    trainer = quiet_trainer(tmp_path, max_epochs=15, callbacks=[BackboneExport()])
    trainer.fit(METHODS[method](), datamodule=DigitsDataModule(batch_size=128))
    results = evaluate_matrix(
        {method: str(tmp_path / "backbone.pt")},
        {"digits": None},
        protocols=["knn", "logistic"],
        labels_per_class=10,
        seeds=[0, 1, 2],
        output_dir=str(tmp_path / "eval"),
        hardware=CPU,
    )
    for protocol in ("knn", "logistic"):
        pretrained, random = (
            [r.value for r in results if r.checkpoint == checkpoint and r.protocol == protocol]
            for checkpoint in (method, "random init (small_conv, 16px)")
        )
        margin = statistics.mean(pretrained) - statistics.mean(random)
        spread = max(statistics.stdev(pretrained), statistics.stdev(random))
        assert margin > spread, (protocol, margin, spread)
