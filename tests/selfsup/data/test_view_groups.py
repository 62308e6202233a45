"""Groups of views with their own count, size and pipeline, and solarisation, in both augmentation paths."""

import pytest
import torch

from selfsup.data import Augmentation, DigitsDataModule, ViewGroup
from selfsup.data.augment import view_transform
from selfsup.data.batch_augment import BatchViewAugmentation
from selfsup.errors import ConfigurationError

ONLY_SOLARIZE = Augmentation(
    crop_scale=(1.0, 1.0),
    horizontal_flip_prob=0.0,
    jitter_prob=0.0,
    grayscale_prob=0.0,
    blur_prob=0.0,
    solarize_prob=1.0,
)


def _image() -> torch.Tensor:
    return torch.tensor([0, 64, 127, 128, 200, 255], dtype=torch.uint8).repeat(6, 1).expand(3, 6, 6).contiguous()


def test_solarisation_inverts_the_pixels_of_128_and_above_in_both_paths():
    image = _image()
    expected = torch.tensor([0, 64, 127, 127, 55, 0], dtype=torch.float32).repeat(6, 1).expand(3, 6, 6) / 255
    per_sample = view_transform(ONLY_SOLARIZE, 6, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))(image)
    batched = BatchViewAugmentation(ONLY_SOLARIZE, 6, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))(image[None])[0]
    torch.testing.assert_close(per_sample, expected)
    torch.testing.assert_close(batched, expected, atol=1e-6, rtol=0)


def test_without_solarisation_the_pipeline_draws_exactly_as_before():
    """A step with p = 0 would still draw from the generator and change every later view: none is added."""
    steps = view_transform(Augmentation(), 16, (0.5,) * 3, (0.5,) * 3).transforms
    assert not any(type(step).__name__ == "RandomSolarize" for step in steps)


@pytest.mark.parametrize("augment_on", ["workers", "device"])
def test_each_group_gives_its_count_of_views_at_its_size_in_group_order(augment_on):
    torch.manual_seed(0)
    groups = [ViewGroup(count=2), ViewGroup(count=3, image_size=8, augmentation=ONLY_SOLARIZE)]
    datamodule = DigitsDataModule(batch_size=4, augment_on=augment_on, view_groups=groups)
    datamodule.setup("fit")
    views, labels = next(iter(datamodule.train_dataloader()))
    if augment_on == "device":
        datamodule.trainer = type("Trainer", (), {"training": True})()
        views, labels = datamodule.on_after_batch_transfer((views, labels), 0)
    assert [tuple(view.shape) for view in views] == [(4, 3, 16, 16)] * 2 + [(4, 3, 8, 8)] * 3
    assert datamodule.num_views == 5
    assert not torch.equal(views[0], views[1])  # independent draws within a group


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"view_groups": []}, "data.init_args.view_groups must be null or a non-empty list"),
        ({"view_groups": [ViewGroup(2)], "num_views": 3}, "num_views must be left out with view_groups, or equal"),
    ],
)
def test_inconsistent_groups_are_refused_in_one_line(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        DigitsDataModule(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "view_groups.count must be an integer >= 1, got 0"),
        ({"count": 1.5}, "view_groups.count must be an integer >= 1"),
        ({"count": True}, "view_groups.count must be an integer >= 1, got True"),
        ({"image_size": -8}, "view_groups.image_size must be null"),
    ],
)
def test_a_bad_group_is_refused_in_one_line(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        ViewGroup(**kwargs)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_a_solarisation_probability_outside_zero_to_one_is_refused(value):
    with pytest.raises(ConfigurationError, match="augmentation.solarize_prob must be a probability in"):
        Augmentation(solarize_prob=value)
