"""The evaluation protocols, each a function from a backbone and a dataset to a number.

Protocols that train by SGD (linear probe, fine-tuning) run through a Lightning
Trainer built from :class:`Hardware`, so they run on one device or under DDP alike;
those that only read features (kNN, LogME, the L-BFGS logistic regression and the
linear probe on cached features) reuse features extracted once.
"""

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Subset
from torchvision.transforms import v2

from downstream.classifier import Classifier
from downstream.data import EvaluationData, feature_dataset
from downstream.extraction import extract
from downstream.hardware import Hardware
from downstream.logistic import LogisticRegression
from downstream.recipes import FinetuneRecipe, KNNRecipe, LinearRecipe, LogisticRecipe
from downstream.standardize import Standardization
from selfsup.data import eval_transform
from selfsup.data.datasets import IndexedDataset
from selfsup.evaluation import weighted_knn_predict


@dataclass(frozen=True)
class Outcome:
    """A trained protocol's test top-1 (%) and its per-example test losses, in test-set order."""

    accuracy: float
    losses: torch.Tensor


@dataclass
class Task:
    """One backbone on one dataset: the images, the labelled training subset, the input format."""

    train: torch.utils.data.Dataset
    test: torch.utils.data.Dataset
    train_indices: torch.Tensor
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_fraction: float = 1.0

    def images(self, split: str, transform=None) -> IndexedDataset:
        """``(image, label, index)`` of the training subset or the test split."""
        transform = transform or eval_transform(self.image_size, self.mean, self.std, self.crop_fraction)
        if split == "train":
            return IndexedDataset(Subset(self.train, self.train_indices.tolist()), transform)
        return IndexedDataset(self.test, transform)


def supervised_augmentation(task: Task, crop_scale: tuple[float, float], flip_prob: float) -> v2.Compose:
    """The usual supervised training augmentation: random resized crop and horizontal flip."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(task.image_size, scale=crop_scale, antialias=True),
            v2.RandomHorizontalFlip(flip_prob),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(task.mean, task.std),
        ]
    )


def knn_accuracy(train, test, num_classes: int, recipe: KNNRecipe) -> float:
    """Top-1 (%) of weighted kNN; ``train`` and ``test`` are ``(features, labels)``."""
    predictions = weighted_knn_predict(*train, test[0], num_classes, recipe.k, recipe.temperature)
    return 100.0 * (predictions == test[1]).float().mean().item()


def logistic_accuracy(train, test, num_classes: int, recipe: LogisticRecipe) -> Outcome:
    """The L-BFGS logistic regression; ``train`` and ``test`` are ``(features, labels)``."""
    model = LogisticRegression(num_classes, recipe).fit(*train)
    accuracy = 100.0 * (model.predict(test[0]) == test[1]).float().mean().item()
    return Outcome(accuracy, model.losses(*test))


def train_and_test(classifier: Classifier, data: EvaluationData, epochs: int, hardware: Hardware) -> Outcome:
    """Fit ``classifier`` for ``epochs``; its test top-1 (%) and per-example losses, synced across ranks."""
    trainer = hardware.trainer(max_epochs=epochs)
    trainer.fit(classifier, datamodule=data)
    (result,) = trainer.test(classifier, datamodule=data, verbose=False)
    return Outcome(100.0 * result["test/acc"], classifier.test_losses)


def linear_on_features(train, test, num_classes: int, recipe: LinearRecipe, hardware: Hardware, seed: int) -> Outcome:
    """The linear probe on cached ``(features, labels)``: the backbone never runs."""
    torch.manual_seed(seed)
    standardization = Standardization.fit(train[0]) if recipe.standardize else None
    classifier = Classifier(nn.Identity(), train[0].shape[1], num_classes, recipe, standardization)
    data = EvaluationData(
        feature_dataset(*train), feature_dataset(*test), recipe.batch_size, hardware.num_workers, seed
    )
    return train_and_test(classifier, data, recipe.epochs, hardware)


def linear_on_images(backbone, task: Task, recipe: LinearRecipe, hardware: Hardware, seed: int) -> Outcome:
    """The linear probe with the frozen backbone run on every batch of every epoch.

    The probe freezes a copy: ``backbone`` itself (its ``requires_grad`` flags, its mode)
    is left as it was handed, so a later protocol, fine-tuning above all, gets it intact.
    """
    standardization = None
    if recipe.standardize:
        (features,), _ = extract(backbone, task.images("train"), hardware)
        standardization = Standardization.fit(features)
    torch.manual_seed(seed)
    classifier = Classifier(copy.deepcopy(backbone), backbone.feature_dim, task.num_classes, recipe, standardization)
    train = task.images(
        "train", supervised_augmentation(task, recipe.crop_scale, recipe.flip_prob) if recipe.augment else None
    )
    data = EvaluationData(train, task.images("test"), recipe.batch_size, hardware.num_workers, seed)
    return train_and_test(classifier, data, recipe.epochs, hardware)


def fine_tune(backbone, task: Task, recipe: FinetuneRecipe, hardware: Hardware, seed: int) -> Outcome:
    """Fine-tune a copy of ``backbone`` (the original is left as it was)."""
    torch.manual_seed(seed)
    augment = supervised_augmentation(task, recipe.crop_scale, recipe.flip_prob)
    classifier = Classifier(copy.deepcopy(backbone), backbone.feature_dim, task.num_classes, recipe)
    data = EvaluationData(
        task.images("train", augment), task.images("test"), recipe.batch_size, hardware.num_workers, seed
    )
    return train_and_test(classifier, data, recipe.epochs, hardware)
