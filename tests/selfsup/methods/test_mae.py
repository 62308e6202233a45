"""MAE on the shell: the encoder is the backbone, the decoder puts tokens back in place, the loss falls."""

import pytest
import pytorch_lightning as pl
import torch

from selfsup.components.mae_decoder import MAEDecoder
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods.mae import MAE
from selfsup.pretext.patch_masking import random_patch_mask
from tests.helpers import RecordMetric, quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(
    backbone="vit_micro",
    backbone_kwargs={"num_layers": 2},
    decoder_dim=32,
    decoder_depth=1,
    decoder_heads=4,
    warmup_epochs=0,
)


def test_with_every_patch_visible_the_encoder_is_the_backbones_forward():
    torch.manual_seed(0)
    model = MAE(**TINY).eval()
    images = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        tokens = model.embed_patches(images)
        encoded = model.encode_visible(tokens)
        torch.testing.assert_close(encoded[:, 0], model.backbone(images))  # the class token after the norm
        stages = model.backbone.forward_stages(images)
    assert encoded.shape == (3, 17, 64) and stages[-1].shape == (3, 64, 4, 4)


def test_the_decoder_puts_each_visible_token_at_its_position_and_the_mask_token_elsewhere():
    torch.manual_seed(0)
    decoder = MAEDecoder(encoder_dim=8, num_patches=6, patch_pixels=5, decoder_dim=8, depth=0, num_heads=2).eval()
    with torch.no_grad():
        decoder.embed.weight.copy_(torch.eye(8))
        decoder.embed.bias.zero_()
    tokens = torch.randn(2, 3, 8)  # class token + 2 visible
    kept = torch.tensor([[1, 4], [0, 5]])
    pixels = decoder(tokens, kept)
    assert pixels.shape == (2, 6, 5)
    with torch.no_grad():

        def predicted(vector, position):
            return decoder.predict(decoder.norm(vector + decoder.position_embedding[0, position + 1]))

        torch.testing.assert_close(pixels[0, 4], predicted(tokens[0, 2], 4))
        torch.testing.assert_close(pixels[1, 0], predicted(tokens[1, 1], 0))
        torch.testing.assert_close(pixels[0, 2], predicted(decoder.mask_token[0, 0], 2))


def test_the_objective_is_the_masked_loss_and_changing_a_masked_patch_leaves_the_encoder_input_alone():
    torch.manual_seed(0)
    model = MAE(**TINY).eval()
    images = torch.randn(2, 3, 16, 16)
    kept, mask = random_patch_mask(2, 16, 0.75)
    loss = model.mae_objective(images, kept, mask)
    loss.backward()
    assert torch.isfinite(loss) and model.decoder.mask_token.grad.abs().sum() > 0
    # Altering a masked patch's pixels changes the target but not what the encoder sees.
    row, column = divmod(int(mask[0].nonzero()[0]), 4)
    altered = images.clone()
    altered[0, :, 4 * row : 4 * row + 4, 4 * column : 4 * column + 4] += 3.0
    with torch.no_grad():
        visible = [model.embed_patches(x).gather(1, kept.unsqueeze(-1).expand(-1, -1, 64)) for x in (images, altered)]
    torch.testing.assert_close(visible[0], visible[1])


def test_a_short_run_on_digits_lowers_the_reconstruction_loss(tmp_path):
    pl.seed_everything(0)
    record = RecordMetric("train/reconstruction_loss_step")
    model = MAE(**TINY, optimizer="adamw", lr=3e-3, lr_scaling="none", betas=(0.9, 0.95))
    trainer = quiet_trainer(tmp_path, max_steps=30, callbacks=[record])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, image_size=16, num_views=1))
    losses = record.values
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.1, losses
    assert trainer.optimizers[0].param_groups[0]["betas"] == (0.9, 0.95)


def test_a_convolutional_backbone_is_refused_in_one_line():
    with pytest.raises(ConfigurationError, match="MAE masks the patch tokens of a Vision Transformer; .* 'small_conv'"):
        MAE(**{**TINY, "backbone": "small_conv", "backbone_kwargs": {"width": 8}})


def test_images_of_another_size_are_refused_with_the_key_to_set():
    model = MAE(**TINY)
    with pytest.raises(ConfigurationError, match="takes 16x16 images, got 24x24: set model.init_args.backbone_kwargs"):
        model.mae_objective(torch.randn(1, 3, 24, 24))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mask_ratio": 1.0}, "mask_ratio must be in \\[0, 1\\), got 1.0"),
        ({"mask_ratio": -0.25}, "mask_ratio must be in \\[0, 1\\)"),
        ({"mask_ratio": float("nan")}, "mask_ratio must be in \\[0, 1\\), got nan"),
        ({"mask_ratio": 0.0}, "mask_ratio must be large enough to mask at least one of the 16 patches"),
        ({"mask_ratio": 0.03125}, "mask_ratio must be large enough to mask at least one of the 16 patches"),
        ({"decoder_dim": 30}, "decoder_dim must be a multiple of decoder_heads=4, got 30"),
        ({"decoder_depth": 0}, "decoder_depth must be an integer >= 1, got 0"),
        ({"decoder_heads": 2.0}, "decoder_heads must be an integer >= 1"),
        ({"betas": (0.9, 1.0)}, "betas must be two numbers in \\[0, 1\\)"),
        ({"betas": (0.9,)}, "betas must be two numbers in \\[0, 1\\)"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(kwargs, message):
    with pytest.raises(ConfigurationError, match=f"^model\\.init_args\\.{message}") as error:
        MAE(**TINY | kwargs)
    assert "\n" not in str(error.value)
