"""The batched on-device views draw from the same distributions as the per-sample pipeline.

Checked on the parameters (crop area and aspect ratio against torchvision's own draws,
jitter factors, blur sigma, how often each step applies) and on the views themselves
(pixel statistics of both paths over the same images). Speed is the benchmark's business
(``benchmarks/augmentation.py``), not a test's.
"""

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import ks_2samp
from torchvision.transforms import v2

from selfsup.data import DigitsDataModule, ImageFolderDataModule
from selfsup.data.augment import Augmentation, view_transform
from selfsup.data.batch_augment import BatchViewAugmentation
from selfsup.errors import ConfigurationError

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
SIMCLR = Augmentation()


def _colour_images(count: int, size: int = 32) -> torch.Tensor:
    """Smooth random colour images: every jitter operation has something to change."""
    generator = torch.Generator().manual_seed(0)
    patches = torch.randint(0, 256, (count, 3, 4, 4), generator=generator).float()
    resized = F.interpolate(patches, size=size, mode="bilinear", align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def _batched_parameters(augmentation: Augmentation, count: int = 4096) -> dict:
    torch.manual_seed(0)
    batched = BatchViewAugmentation(augmentation, 32, MEAN, STD)
    batched(torch.zeros(count, 3, 32, 32, dtype=torch.uint8))
    return {type(step).__name__: step._params for step in batched.steps}


def test_crop_area_and_aspect_ratio_follow_torchvisions_distribution():
    crop = _batched_parameters(SIMCLR)["RandomResizedCrop"]["src"]
    width = crop[:, 1, 0] - crop[:, 0, 0] + 1
    height = crop[:, 2, 1] - crop[:, 0, 1] + 1
    torch.manual_seed(0)
    reference = v2.RandomResizedCrop(32, scale=SIMCLR.crop_scale)
    drawn = [reference.make_params([torch.zeros(3, 32, 32)]) for _ in range(4096)]
    reference_width = torch.tensor([float(p["width"]) for p in drawn])
    reference_height = torch.tensor([float(p["height"]) for p in drawn])

    area, reference_area = width * height / 32**2, reference_width * reference_height / 32**2
    assert area.min() >= 0.08 * 0.8 and area.max() <= 1.0
    assert (width / height).min() >= 3 / 4 * 0.8 and (width / height).max() <= 4 / 3 * 1.25
    assert ks_2samp(area.numpy(), reference_area.numpy()).pvalue > 1e-3
    assert ks_2samp((width / height).numpy(), (reference_width / reference_height).numpy()).pvalue > 1e-3


def test_each_step_applies_with_its_probability_and_draws_in_its_range():
    parameters = _batched_parameters(SIMCLR)
    expected = {
        "RandomHorizontalFlip": SIMCLR.horizontal_flip_prob,
        "ColorJitter": SIMCLR.jitter_prob,
        "RandomGrayscale": SIMCLR.grayscale_prob,
        "RandomGaussianBlur": SIMCLR.blur_prob,
    }
    for name, probability in expected.items():
        applied = parameters[name]["batch_prob"].float().mean().item()
        assert applied == pytest.approx(probability, abs=4 * (probability * (1 - probability) / 4096) ** 0.5), name

    jitter = parameters["ColorJitter"]
    for factor in ("brightness_factor", "contrast_factor", "saturation_factor"):
        values = jitter[factor]
        assert 0.2 - 1e-6 <= values.min() < 0.25 and 1.75 < values.max() <= 1.8 + 1e-6, factor
    assert -0.2 - 1e-6 <= jitter["hue_factor"].min() < -0.19 and 0.19 < jitter["hue_factor"].max() <= 0.2 + 1e-6
    sigma = parameters["RandomGaussianBlur"]["sigma"]
    assert 0.1 <= sigma.min() < 0.15 and 1.95 < sigma.max() <= 2.0


def _view_statistics(views: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "mean": views.mean(dim=(0, 2, 3)),
        "std": views.std(dim=(0, 2, 3)),
        "spread of view means": views.mean(dim=(2, 3)).std(dim=0),
        "contrast within views": views.std(dim=(2, 3)).mean(dim=0),
    }


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_both_paths_give_views_of_the_same_statistics(strength):
    augmentation = Augmentation(jitter_strength=strength)
    images = _colour_images(512)
    torch.manual_seed(0)
    per_sample = view_transform(augmentation, 32, MEAN, STD)
    reference = _view_statistics(torch.stack([per_sample(image) for _ in range(4) for image in images]))
    torch.manual_seed(0)
    batched = BatchViewAugmentation(augmentation, 32, MEAN, STD)
    statistics = _view_statistics(torch.cat([batched(images) for _ in range(4)]))
    torch.testing.assert_close(statistics["mean"], reference["mean"], atol=0.05, rtol=0)
    for name in ("std", "spread of view means", "contrast within views"):
        torch.testing.assert_close(statistics[name], reference[name], rtol=0.06, atol=0, msg=name)


def test_a_weaker_jitter_is_told_apart_by_the_same_statistics():
    """The control: the comparison above is sharp enough to see strength 0.5 against 1.0."""
    images = _colour_images(512)
    torch.manual_seed(0)
    per_sample = view_transform(SIMCLR, 32, MEAN, STD)
    reference = _view_statistics(torch.stack([per_sample(image) for _ in range(4) for image in images]))
    batched = BatchViewAugmentation(Augmentation(jitter_strength=0.5), 32, MEAN, STD)
    statistics = _view_statistics(torch.cat([batched(images) for _ in range(4)]))
    with pytest.raises(AssertionError):
        torch.testing.assert_close(
            statistics["spread of view means"], reference["spread of view means"], rtol=0.06, atol=0
        )


def test_device_path_yields_the_views_the_methods_expect():
    datamodule = DigitsDataModule(batch_size=8, augment_on="device", num_views=3)
    datamodule.setup("fit")
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (8, 3, 16, 16)
    datamodule.trainer = type("Training", (), {"training": True})()
    views, same_labels = datamodule.on_after_batch_transfer((images, labels), 0)
    assert len(views) == 3 and all(view.shape == (8, 3, 16, 16) and view.dtype == torch.float32 for view in views)
    assert not torch.equal(views[0], views[1]) and torch.equal(same_labels, labels)


def test_image_folders_refuse_the_device_path(tmp_path):
    with pytest.raises(ConfigurationError, match="images of many sizes"):
        ImageFolderDataModule(str(tmp_path), augment_on="device")
