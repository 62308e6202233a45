"""MAE's pieces: patches in the encoder's order, the masked loss of normalised patches, the random mask."""

import pytest
import torch

from selfsup.backbones import build_backbone
from selfsup.losses.mae import masked_patch_mse, patchify
from selfsup.pretext.patch_masking import random_patch_mask


def test_patches_are_row_major_and_flattened_row_column_channel():
    image = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)  # 2 channels
    patches = patchify(image, 2)
    assert patches.shape == (1, 4, 8)
    # patch 1 is the top-right 2x2 block: pixels (0,2), (0,3), (1,2), (1,3), each with its two channels
    expected = [image[0, c, r, col].item() for r in (0, 1) for col in (2, 3) for c in (0, 1)]
    assert patches[0, 1].tolist() == expected


def test_the_patch_order_is_the_vits_token_order():
    """A 1x1-output linear map of each patch equals torchvision's patch projection of the same image."""
    backbone = build_backbone("vit_micro")
    image = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        tokens = backbone.conv_proj(image).flatten(2).transpose(1, 2)
        weight = backbone.conv_proj.weight.permute(0, 2, 3, 1).reshape(64, -1)  # (D, p, p, C) as patchify flattens
        by_patches = patchify(image, 4) @ weight.T + backbone.conv_proj.bias
    torch.testing.assert_close(by_patches, tokens, rtol=1e-5, atol=1e-5)


def test_the_loss_equals_a_hand_computation_on_normalised_masked_patches():
    image = torch.tensor([[[[1.0, 3.0, 0.0, 0.0], [5.0, 7.0, 2.0, 2.0]]]])  # 1 channel, 2x4: two 2x2 patches
    predictions = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]])
    mask = torch.tensor([[1.0, 0.0]])  # only the first patch counts
    # patch 0: values 1, 3, 5, 7; mean 4, unbiased variance 20/3 -> target (v - 4) / sqrt(20/3 + 1e-6)
    std = (20 / 3 + 1e-6) ** 0.5
    expected = sum(((v - 4) / std) ** 2 for v in (1, 3, 5, 7)) / 4
    assert masked_patch_mse(predictions, image, mask, 2).item() == pytest.approx(expected, rel=1e-6)
    raw = (1 + 9 + 25 + 49) / 4  # without normalisation, against zeros
    assert masked_patch_mse(predictions, image, mask, 2, normalize_target=False).item() == pytest.approx(raw)


def test_predictions_on_visible_patches_never_count():
    torch.manual_seed(0)
    images, predictions = torch.randn(3, 3, 8, 8), torch.randn(3, 4, 48)
    _, mask = random_patch_mask(3, 4, 0.5)
    changed = predictions.clone()
    changed[mask == 0] += 100.0
    assert masked_patch_mse(changed, images, mask, 4).item() == pytest.approx(
        masked_patch_mse(predictions, images, mask, 4).item()
    )
    perfect = patchify(images, 4)
    perfect = (perfect - perfect.mean(-1, keepdim=True)) / (perfect.var(-1, keepdim=True) + 1e-6).sqrt()
    assert masked_patch_mse(perfect, images, mask, 4).item() == pytest.approx(0.0, abs=1e-10)
    assert masked_patch_mse(predictions, images, torch.zeros(3, 4), 4).item() == 0.0  # nothing masked


@pytest.mark.parametrize(("ratio", "kept"), [(0.0, 16), (0.75, 4), (0.9, 2), (0.99, 1)])
def test_the_mask_keeps_round_l_times_one_minus_ratio_distinct_patches_per_image(ratio, kept):
    torch.manual_seed(0)
    indices, mask = random_patch_mask(5, 16, ratio)
    assert indices.shape == (5, kept) and mask.shape == (5, 16)
    assert (mask.sum(dim=1) == 16 - kept).all()
    for row, row_mask in zip(indices, mask):
        assert row.tolist() == sorted(set(row.tolist())) and (row_mask[row] == 0).all()
    assert len({tuple(row.tolist()) for row in indices}) > 1 or kept == 16  # each image draws its own


def test_every_patch_is_kept_equally_often():
    torch.manual_seed(0)
    _, mask = random_patch_mask(4000, 16, 0.75)
    assert (1 - mask).mean(dim=0).sub(0.25).abs().max() < 0.03


@pytest.mark.parametrize("ratio", [1.0, -0.1, float("nan")])
def test_a_ratio_outside_zero_to_one_is_refused(ratio):
    with pytest.raises(ValueError, match="the mask ratio must be in \\[0, 1\\)"):
        random_patch_mask(2, 16, ratio)


def test_mismatched_predictions_are_refused():
    with pytest.raises(ValueError, match="do not match the \\(1, 4, 12\\) patches"):
        masked_patch_mse(torch.zeros(1, 4, 10), torch.zeros(1, 3, 4, 4), torch.ones(1, 4), 2)
