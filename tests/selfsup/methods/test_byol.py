"""BYOL on the shell: the target follows the online network by EMA, the loss falls, bad settings refused."""

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.losses.byol import normalized_mse
from selfsup.methods.byol import BYOL
from selfsup.schedules import cosine_momentum
from tests.helpers import RecordMetric, quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(
    backbone="small_conv",
    backbone_kwargs={"width": 8},
    projection_hidden_dim=32,
    projection_dim=16,
    prediction_hidden_dim=32,
    warmup_epochs=0,
)


def _parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


class _Snapshots(pl.Callback):
    """(online, target) weights at the start of every step and at the end: each after the last step's EMA."""

    def __init__(self):
        self.weights = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.weights.append((_parameters(pl_module.backbone), _parameters(pl_module.target_backbone)))

    def on_train_end(self, trainer, pl_module):
        self.on_train_batch_start(trainer, pl_module, None, None)


def test_the_loss_is_the_symmetrised_normalised_mse_of_predictions_and_target_projections():
    torch.manual_seed(0)
    model = BYOL(**TINY).eval()
    views = [torch.randn(4, 3, 16, 16) for _ in range(2)]
    with torch.no_grad():
        predictions = [model.predictor(model.projector(model.backbone(view))) for view in views]
        targets = [model.target_projector(model.target_backbone(view)) for view in views]
    expected = normalized_mse(predictions[0], targets[1]) + normalized_mse(predictions[1], targets[0])
    with torch.no_grad():
        loss, features = model.byol_objective(*views)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(features, model.backbone(views[0]))


def test_after_each_step_the_target_is_the_momentum_average_of_itself_and_the_new_online_weights(tmp_path):
    pl.seed_everything(0)
    model = BYOL(**TINY, target_momentum=0.75, target_momentum_schedule="constant")
    assert all(not p.requires_grad for p in model.target_backbone.parameters())
    assert all(torch.equal(t, o) for t, o in zip(model.target_backbone.parameters(), model.backbone.parameters()))
    snapshots = _Snapshots()
    trainer = quiet_trainer(tmp_path, max_steps=3, callbacks=[snapshots])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16, image_size=16))
    assert len(snapshots.weights) == 4
    for (_, target), (online, next_target) in zip(snapshots.weights, snapshots.weights[1:]):
        for t, o, n in zip(target, online, next_target, strict=True):
            torch.testing.assert_close(n, 0.75 * t + 0.25 * o, rtol=1e-6, atol=1e-7)
    online, target = snapshots.weights[-1]
    assert not torch.equal(online[0], target[0])  # it lags behind


def test_each_update_uses_the_cosine_schedule_at_its_step_rising_from_the_base_to_one(tmp_path, monkeypatch):
    pl.seed_everything(0)
    model = BYOL(**TINY, target_momentum=0.9)
    used = []
    update = model.update_momentum_targets
    monkeypatch.setattr(model, "update_momentum_targets", lambda momentum: (used.append(momentum), update(momentum)))
    trainer = quiet_trainer(tmp_path, max_epochs=2, limit_train_batches=4)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16, image_size=16))
    assert used == pytest.approx([cosine_momentum(step, 8, 0.9) for step in range(1, 9)])
    assert used[-1] == 1.0 and all(later > earlier for earlier, later in zip(used, used[1:]))


def test_a_short_run_on_digits_lowers_the_loss(tmp_path):
    pl.seed_everything(0)
    record = RecordMetric("train/byol_loss_step")
    model = BYOL(**TINY, optimizer="adamw", lr=3e-3, lr_scaling="none")
    trainer = quiet_trainer(tmp_path, max_steps=30, callbacks=[record])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, image_size=16))
    losses = record.values
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.3, losses


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_momentum": 1.5}, "target_momentum must be in \\[0, 1\\], got 1.5"),
        ({"target_momentum": -0.1}, "target_momentum must be in \\[0, 1\\]"),
        ({"target_momentum": float("nan")}, "target_momentum must be in \\[0, 1\\], got nan"),
        ({"target_momentum": "0.99"}, "target_momentum must be in \\[0, 1\\], got '0.99'"),
        ({"target_momentum_schedule": "linear"}, "target_momentum_schedule must be constant or cosine"),
        ({"projection_dim": 0}, "projection_dim must be an integer >= 1, got 0"),
        ({"prediction_hidden_dim": 2.5}, "prediction_hidden_dim must be an integer >= 1"),
        ({"projection_hidden_dim": True}, "projection_hidden_dim must be an integer >= 1"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(kwargs, message):
    with pytest.raises(ConfigurationError, match=f"^model\\.init_args\\.{message}") as error:
        BYOL(**TINY | kwargs)
    assert "\n" not in str(error.value)
