"""Downstream protocols: the probe leaves the backbone alone, caching changes nothing, freezing holds."""

import math
import re

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from downstream.classifier import Classifier, FrozenBackboneChanged
from downstream.data import EvaluationData
from downstream.datasets import load_dataset
from downstream.extraction import extract
from downstream.hardware import Hardware
from downstream.protocols import Task, fine_tune, knn_accuracy, linear_on_features, linear_on_images, train_and_test
from downstream.recipes import FinetuneRecipe, KNNRecipe, LinearRecipe, LogisticRecipe
from downstream.splits import balanced_subset, label_fraction_subset, labels_of
from selfsup.backbones import build_backbone
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from tests.helpers import random_digits_backbone

CPU = Hardware(accelerator="cpu", batch_size=128)
PROBE = LinearRecipe(epochs=4, batch_size=64, lr=0.5, schedule="cosine", augment=False, standardize=True)


def digits_task(per_class_fraction: float = 0.2) -> Task:
    splits = load_dataset("digits", image_size=16)
    indices = label_fraction_subset(labels_of(splits.train), per_class_fraction, seed=0)
    return Task(splits.train, splits.test, indices, 10, 16, DigitsDataModule.mean, DigitsDataModule.std)


def backbone_with_batch_norm():
    """In training mode, as a backbone fresh from pretraining is: the probe must not trust it to be in eval."""
    torch.manual_seed(0)
    return build_backbone("small_conv", width=8)


def test_linear_probe_leaves_the_backbone_bit_identical():
    backbone = backbone_with_batch_norm()
    before = {key: value.clone() for key, value in backbone.state_dict().items()}
    assert any("running_mean" in key for key in before)
    linear_on_images(backbone, digits_task(), PROBE, CPU, seed=0)
    after = backbone.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_the_frozen_check_catches_a_probe_that_updates_batch_norm():
    task = digits_task()
    classifier = Classifier(backbone_with_batch_norm(), 64, 10, LinearRecipe(epochs=1, batch_size=64, augment=False))
    classifier.backbone.train()  # sabotage: batch norm now updates its running statistics
    data = EvaluationData(task.images("train"), task.images("test"), PROBE.batch_size)
    with pytest.raises(FrozenBackboneChanged, match="running_mean"):
        train_and_test(classifier, data, 1, CPU)


def test_cached_and_uncached_probes_reach_the_same_accuracy():
    backbone, task = backbone_with_batch_norm(), digits_task()
    (train_features,), train_labels = extract(backbone, task.images("train"), CPU)
    (test_features,), test_labels = extract(backbone, task.images("test"), CPU)
    cached = linear_on_features((train_features, train_labels), (test_features, test_labels), 10, PROBE, CPU, seed=0)
    uncached = linear_on_images(backbone, task, PROBE, CPU, seed=0)
    assert cached.accuracy == pytest.approx(uncached.accuracy, abs=1e-9)
    assert 20 < cached.accuracy < 100
    assert cached.losses.shape == (len(task.test),)
    torch.testing.assert_close(cached.losses, uncached.losses, rtol=1e-4, atol=1e-5)


def test_extraction_returns_every_stage_in_dataset_order():
    backbone, task = backbone_with_batch_norm(), digits_task()
    stages, labels = extract(backbone, task.images("test"), CPU, all_stages=True)
    assert [stage.shape[1] for stage in stages] == list(backbone.stage_dims)
    assert torch.equal(labels, task.test.labels)
    with torch.no_grad():
        backbone.eval()
        first_images = torch.stack([task.images("test")[index][0] for index in range(4)])
        torch.testing.assert_close(stages[-1][:4], backbone(first_images))


def test_knn_protocol_is_exact_on_a_separable_set():
    centres = torch.eye(3) * 5
    train = (centres.repeat_interleave(4, dim=0) + 0.1 * torch.randn(12, 3), torch.arange(3).repeat_interleave(4))
    test = (centres + 0.1 * torch.randn(3, 3), torch.arange(3))
    assert knn_accuracy(train, test, 3, KNNRecipe(k=4, temperature=0.1)) == 100.0


@pytest.mark.parametrize("given_in_eval_mode", [False, True])
def test_fine_tuning_trains_only_the_stages_after_the_frozen_ones(given_in_eval_mode):
    backbone, task = backbone_with_batch_norm(), digits_task()
    backbone.train(not given_in_eval_mode)
    recipe = FinetuneRecipe(epochs=1, batch_size=64, lr=0.05, frozen_stages=2)
    before = {key: value.clone() for key, value in backbone.state_dict().items()}
    classifier = Classifier(backbone, backbone.feature_dim, 10, recipe)
    data = EvaluationData(task.images("train"), task.images("test"), recipe.batch_size)
    train_and_test(classifier, data, recipe.epochs, CPU)
    after = backbone.state_dict()
    for key in before:
        frozen = key.startswith(("stages.0.", "stages.1."))
        assert torch.equal(before[key], after[key]) == frozen or "num_batches_tracked" in key, key


def test_layer_wise_decay_gives_each_stage_its_learning_rate():
    recipe = FinetuneRecipe(lr=0.1, backbone_lr=0.01, layer_decay=0.5, frozen_stages=1)
    classifier = Classifier(build_backbone("resnet18"), 512, 10, recipe)
    classifier.trainer = pl.Trainer(max_steps=10, logger=False, enable_checkpointing=False)
    optimizer = classifier.configure_optimizers()["optimizer"]
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 0.01 * 0.5**3, 0.01 * 0.5**2, 0.01 * 0.5]
    stem_and_layer1 = {
        id(p) for p in [*classifier.backbone.conv1.parameters(), *classifier.backbone.layer1.parameters()]
    }
    assert not stem_and_layer1 & {id(p) for group in optimizer.param_groups for p in group["params"]}


@pytest.mark.parametrize("name", ["vit_micro", "convnext_tiny"])
def test_fine_tuning_trains_every_backbone_parameter_including_those_outside_the_stages(name):
    """A ViT's class token, position embedding and final norm, ConvNeXt's stem and downsampling layers."""
    backbone = build_backbone(name)
    stem, stages = backbone.parameter_groups()
    groups = [stem, *stages]
    assert sum(len(group) for group in groups) == len(list(backbone.parameters()))
    assert len({id(p) for group in groups for p in group}) == len(list(backbone.parameters()))
    classifier = Classifier(backbone, backbone.feature_dim, 10, FinetuneRecipe(lr=0.1, layer_decay=0.5))
    classifier.trainer = pl.Trainer(max_steps=10, logger=False, enable_checkpointing=False)
    optimised = {id(p) for g in classifier.configure_optimizers()["optimizer"].param_groups for p in g["params"]}
    assert {id(p) for p in backbone.parameters()} <= optimised
    if name == "vit_micro":
        assert {id(backbone.class_token), id(backbone.encoder.pos_embedding)} <= {id(p) for p in stem}
        assert id(backbone.encoder.ln.weight) in {id(p) for p in stages[-1]}
    else:
        assert id(backbone.features[2][1].weight) in {id(p) for p in stages[1]}  # the downsampling before stage 2


def test_frozen_stages_freeze_a_vits_stem_parameters_too():
    backbone = build_backbone("vit_micro")
    classifier = Classifier(backbone, backbone.feature_dim, 10, FinetuneRecipe(frozen_stages=2))
    assert not backbone.class_token.requires_grad and not backbone.encoder.pos_embedding.requires_grad
    assert not any(p.requires_grad for p in backbone.encoder.layers[1].parameters())
    assert all(p.requires_grad for p in backbone.encoder.layers[2].parameters()) and classifier.fine_tuning


def test_caching_refuses_augmentation_it_cannot_apply():
    with pytest.raises(ConfigurationError, match="cannot augment"):
        LinearRecipe(cache_features=True, augment=True)


@pytest.mark.parametrize(
    ("schedule", "multipliers"),
    [
        ("step", [1.0, 1.0, 0.1, 0.01, 0.01]),  # MoCo: / 10 at 60% and 80% of the 10 steps
        ("cosine", [1.0, 0.5, 0.5 * (1 + math.cos(0.6 * math.pi)), 0.5 * (1 + math.cos(0.8 * math.pi)), 0.0]),
    ],
)
def test_probe_schedules_are_moco_steps_or_a_half_cosine(schedule, multipliers):
    classifier = Classifier(nn.Identity(), 4, 2, LinearRecipe(schedule=schedule))
    classifier.trainer = pl.Trainer(max_steps=10, logger=False, enable_checkpointing=False)
    factor = classifier.configure_optimizers()["lr_scheduler"]["scheduler"].lr_lambdas[0]
    assert [factor(step) for step in (0, 5, 6, 8, 10)] == pytest.approx(multipliers, abs=1e-12)


def test_balanced_subset_is_deterministic_and_balanced():
    labels = torch.arange(5).repeat(20)
    first = balanced_subset(labels, 3, seed=1)
    assert torch.equal(first, balanced_subset(labels, 3, seed=1))
    assert not torch.equal(first, balanced_subset(labels, 3, seed=2))
    assert torch.bincount(labels[first]).tolist() == [3] * 5
    with pytest.raises(ConfigurationError, match="fewer than"):
        balanced_subset(labels, 21, seed=0)


def test_label_fractions_are_balanced_deterministic_and_checked():
    labels = torch.arange(4).repeat_interleave(50)
    subset = label_fraction_subset(labels, 0.1, seed=3)
    assert torch.bincount(labels[subset]).tolist() == [5, 5, 5, 5]
    assert torch.equal(subset, label_fraction_subset(labels, 0.1, seed=3))
    assert not torch.equal(subset, label_fraction_subset(labels, 0.1, seed=4))
    assert len(label_fraction_subset(labels, 1.0, seed=0)) == 200
    for fraction in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigurationError, match="label fraction must lie in"):
            label_fraction_subset(labels, fraction, seed=0)


def test_transfer_split_keeps_the_upper_classes_relabelled():
    splits = load_dataset("digits_transfer", image_size=16)
    assert splits.num_classes == 5
    assert labels_of(splits.train).unique().tolist() == [0, 1, 2, 3, 4]
    full = load_dataset("digits", image_size=16)
    assert len(splits.test) == int((full.test.labels >= 5).sum())


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(ConfigurationError, match="known datasets: digits, digits_transfer, cifar10"):
        load_dataset("mnist", image_size=16)
    with pytest.raises(ConfigurationError, match="expected the directory"):
        load_dataset("cifar10", image_size=32, data_dir="/nonexistent/cifar")


def test_protocols_leave_the_backbone_they_are_handed_as_it_was():
    backbone = backbone_with_batch_norm()
    before = {key: value.clone() for key, value in backbone.state_dict().items()}
    linear_on_images(backbone, digits_task(), PROBE, CPU, seed=0)
    fine_tune(backbone, digits_task(), FinetuneRecipe(epochs=1, batch_size=64), CPU, seed=0)
    assert backbone.training and all(parameter.requires_grad for parameter in backbone.parameters())
    assert all(torch.equal(before[key], value) for key, value in backbone.state_dict().items())


def test_fine_tuning_after_the_uncached_linear_probe_trains_the_backbone(tmp_path, monkeypatch):
    """The wrong number of old: the probe froze the backbone object and fine-tuning copied it frozen.

    Weights, not batch-norm statistics, tell: a frozen copy in training mode still moves its running means.
    """
    import downstream.protocols as protocols
    from downstream.evaluate import evaluate_matrix

    real_train_and_test, changes = protocols.train_and_test, {}

    def recording(classifier, data, epochs, hardware):
        before = {name: value.detach().clone() for name, value in classifier.backbone.named_parameters()}
        result = real_train_and_test(classifier, data, epochs, hardware)
        after = dict(classifier.backbone.named_parameters())
        changes[classifier.fine_tuning] = any(not torch.equal(before[name], after[name]) for name in before)
        return result

    monkeypatch.setattr(protocols, "train_and_test", recording)
    evaluate_matrix(
        checkpoints={"a": random_digits_backbone(tmp_path / "a.pt")},
        datasets={"digits": None},
        protocols=["linear", "finetune"],
        random_init_baseline=False,
        output_dir=str(tmp_path / "eval"),
        linear=LinearRecipe(epochs=1, batch_size=64, augment=False),
        finetune=FinetuneRecipe(epochs=1, batch_size=64),
        hardware=Hardware(accelerator="cpu"),
    )
    assert changes == {False: False, True: True}


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: KNNRecipe(k=0), "knn.k must be >= 1"),
        (lambda: KNNRecipe(temperature=float("nan")), "knn.temperature must be"),
        (lambda: KNNRecipe(temperature=0.0), "knn.temperature must be"),
        (lambda: LogisticRecipe(max_iter=0), "logistic.max_iter must be >= 1"),
        (lambda: LogisticRecipe(weight_decay=-1.0), "logistic.weight_decay must be"),
        (lambda: LinearRecipe(lr=0.0), "linear.lr must be"),
        (lambda: LinearRecipe(epochs=0), "linear.epochs must be >= 1"),
        (lambda: LinearRecipe(momentum=1.0), "linear.momentum must be in [0, 1)"),
        (lambda: FinetuneRecipe(batch_size=0), "finetune.batch_size must be >= 1"),
        (lambda: FinetuneRecipe(crop_scale=(0.9, 0.1)), "finetune.crop_scale"),
        (lambda: FinetuneRecipe(layer_decay=-0.5), "finetune.layer_decay must be null or > 0"),
        (lambda: FinetuneRecipe(flip_prob=float("inf")), "finetune.flip_prob"),
    ],
)
def test_recipe_settings_out_of_range_are_refused_naming_the_key(build, fragment):
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        build()
