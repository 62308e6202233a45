"""The denoising autoencoder: its loss, its training on digits, the greedy schedule, the export, bad input."""

import pytest
import pytorch_lightning as pl
import torch

from selfsup.checkpoints import load_backbone
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods.autoencoder import DenoisingAutoencoder, reconstruction_loss
from selfsup.runtime import BackboneExport
from tests.helpers import quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = dict(backbone="small_conv", backbone_kwargs={"width": 8}, image_size=16, warmup_epochs=0)


def digits(batch_size: int = 32) -> DigitsDataModule:
    return DigitsDataModule(batch_size=batch_size, image_size=16, num_views=1)


class Record(pl.Callback):
    """The reconstruction loss after every step."""

    def __init__(self) -> None:
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(trainer.callback_metrics["train/reconstruction_loss"]))


def test_the_loss_equals_a_hand_computation_on_a_tiny_tensor():
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    reconstruction = torch.tensor([[[[1.5, 2.0], [1.0, 4.0]]]])
    # Squared errors 0.25, 0, 4, 0: their mean over the 4 pixels ...
    assert reconstruction_loss(reconstruction, target).item() == pytest.approx((0.25 + 0 + 4 + 0) / 4)
    # ... and over the two corrupted pixels only (top-left and bottom-left).
    mask = torch.tensor([[[[True, False], [True, False]]]])
    assert reconstruction_loss(reconstruction, target, mask).item() == pytest.approx((0.25 + 4) / 2)
    # Two channels share one mask: the mean runs over corrupted pixels x channels.
    target_2 = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[2.0, 3.0], [4.0, 5.0]]]])  # (1, 2, 2, 2)
    reconstruction_2 = reconstruction.expand(1, 2, 2, 2)
    expected = ((0.25 + 4) + (0.25 + 9)) / 4  # channel 1's masked errors: (1.5 - 2)^2 and (1 - 4)^2
    assert reconstruction_loss(reconstruction_2, target_2, mask).item() == pytest.approx(expected)
    assert reconstruction_loss(reconstruction_2, target_2).item() == pytest.approx((4.25 + 0.25 + 1 + 9 + 1) / 8)
    assert reconstruction_loss(reconstruction, target, torch.zeros_like(mask)).item() == 0.0


@pytest.mark.parametrize(
    "corruption",
    [
        dict(corruption="masking", mask_fraction=0.25),
        dict(corruption="patch", patch_size=4, mask_fraction=0.5, loss_on_corrupted_only=True),
    ],
)
def test_a_few_steps_reduce_the_reconstruction_loss_on_digits(tmp_path, corruption):
    pl.seed_everything(0, verbose=False)
    recorder = Record()
    model = DenoisingAutoencoder(**SMALL, **corruption, optimizer="adamw", lr=4e-3, weight_decay=0.0)
    quiet_trainer(tmp_path, max_steps=60, callbacks=[recorder]).fit(model, datamodule=digits())
    first, last = recorder.losses[:5], recorder.losses[-5:]
    assert sum(last) / 5 < 0.7 * sum(first) / 5, (first, last)


def test_the_greedy_schedule_moves_on_every_epochs_per_stage_epochs():
    model = DenoisingAutoencoder(**SMALL, encoder_stage=1, greedy_stages=True, epochs_per_stage=2)
    assert [model.greedy_stage(epoch) for epoch in range(6)] == [0, 0, 1, 1, None, None]
    assert sorted(model.decoders) == ["0", "1"]
    kept = DenoisingAutoencoder(
        **SMALL, encoder_stage=1, greedy_stages=True, epochs_per_stage=2, finetune_end_to_end=False
    )
    assert [kept.greedy_stage(epoch) for epoch in range(6)] == [0, 0, 1, 1, 1, 1]
    assert [DenoisingAutoencoder(**SMALL).greedy_stage(epoch) for epoch in range(2)] == [None, None]


class CheckFreezing(pl.Callback):
    """Around every step: the stages before the greedy one are bit-identical, the greedy one moved."""

    def __init__(self) -> None:
        self.trained_stage_by_epoch = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before = [
            {name: value.clone() for name, value in stage.state_dict().items()}
            for stage in pl_module.backbone.stage_modules()
        ]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        after = [stage.state_dict() for stage in pl_module.backbone.stage_modules()]
        greedy = pl_module.greedy_stage(trainer.current_epoch)
        changed = [
            any(not torch.equal(before[name], now[name]) for name in now) for before, now in zip(self.before, after)
        ]
        self.trained_stage_by_epoch[trainer.current_epoch] = greedy
        if greedy is not None:
            assert not any(changed[:greedy]), (trainer.current_epoch, changed)  # weights and BN statistics
            assert changed[greedy]
            trained = [p.requires_grad for p in pl_module.backbone.stage_modules()[greedy].parameters()]
            assert all(trained)
        else:
            assert all(changed[: pl_module.encoder_stage + 1])


def test_greedy_training_freezes_the_stages_before_the_one_it_trains(tmp_path):
    pl.seed_everything(0, verbose=False)
    # SGD with momentum and weight decay: a frozen weight would still move if it had a zero gradient.
    model = DenoisingAutoencoder(
        **SMALL, encoder_stage=2, greedy_stages=True, epochs_per_stage=2, lr=0.1, weight_decay=1e-2
    )
    check = CheckFreezing()
    trainer = quiet_trainer(tmp_path, max_epochs=7, limit_train_batches=2, callbacks=[check])
    trainer.fit(model, datamodule=digits(16))
    assert check.trained_stage_by_epoch == {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: None}
    assert all(p.requires_grad for p in model.backbone.parameters())  # restored when training ends


def test_the_exported_backbone_is_the_encoder(tmp_path):
    pl.seed_everything(0, verbose=False)
    model = DenoisingAutoencoder(**SMALL, encoder_stage=2, corruption="gaussian", noise_std=0.3)
    trainer = quiet_trainer(tmp_path, max_steps=2, callbacks=[BackboneExport()])
    trainer.fit(model, datamodule=digits())
    exported, metadata = load_backbone(tmp_path / "backbone.pt")
    assert metadata["method"] == "DenoisingAutoencoder"
    images = torch.randn(4, 3, 16, 16)
    model.eval(), exported.eval()
    with torch.no_grad():
        assert torch.equal(exported.forward_stages(images)[2], model.encode(images))
        assert torch.equal(exported(images), model.backbone(images))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("mask_fraction", 1.5, "in [0, 1]"),
        ("mask_fraction", -0.1, "in [0, 1]"),
        ("mask_fraction", float("nan"), "in [0, 1]"),
        ("mask_fraction", "half", "in [0, 1]"),
        ("noise_std", -0.5, ">= 0"),
        ("noise_std", float("nan"), ">= 0"),
        ("encoder_stage", 4, "[-4, 3]"),
        ("encoder_stage", -5, "[-4, 3]"),
        ("encoder_stage", 1.0, "an integer"),
        ("corruption", "salt", "one of"),
        ("patch_size", 0, "an integer in [1, image_size=16]"),
        ("patch_size", 2.0, "an integer in [1, image_size=16]"),
        ("image_size", 0, "an integer >= 1"),
        ("image_size", "16", "an integer >= 1"),
        ("mask_fill", float("inf"), "a finite number"),
        ("greedy_stages", "yes", "true or false"),
        ("loss_on_corrupted_only", 1, "true or false"),
        ("finetune_end_to_end", None, "true or false"),
        ("decoder_width", 0, "null or an integer >= 1"),
        ("decoder_width", 2.5, "null or an integer >= 1"),
        ("epochs_per_stage", 0, ">= 1"),
        ("epochs_per_stage", True, ">= 1"),
    ],
)
def test_bad_arguments_are_refused_with_one_line_naming_the_key(name, value, expected):
    with pytest.raises(ConfigurationError) as error:
        DenoisingAutoencoder(**{**SMALL, name: value})
    message = str(error.value)
    assert message.startswith(f"model.init_args.{name} must be ") and expected in message
    assert "\n" not in message


def test_settings_that_contradict_each_other_are_refused(tmp_path):
    with pytest.raises(ConfigurationError, match=r"model.init_args.patch_size must be .* got 17"):
        DenoisingAutoencoder(**SMALL, corruption="patch", patch_size=17)
    DenoisingAutoencoder(**SMALL, corruption="masking", patch_size=17)  # not used: no limit
    with pytest.raises(ConfigurationError, match="model.init_args.loss_on_corrupted_only"):
        DenoisingAutoencoder(**SMALL, mask_fraction=0.0, loss_on_corrupted_only=True)
    model = DenoisingAutoencoder(**{**SMALL, "image_size": 24})
    with pytest.raises(ConfigurationError, match="model.init_args.image_size=24 sizes the decoder"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, datamodule=digits())
