"""A run stopped after a checkpoint and resumed ends exactly where the uninterrupted run ends.

Exactness holds at epoch boundaries (``last.ckpt`` is written at the end of every
epoch) on CPU in deterministic mode: weights, online probe, MoCo's and SEED's queues and
pointers, jigsaw's permutations, optimiser and scheduler state, the random generators (data
order, augmentations, Shuffle-BN) all continue as if nothing had happened. A mid-epoch
checkpoint continues correctly: same epoch count, step count and learning rate.
"""

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from selfsup.checkpoints import RANDOM_STATES_KEY
from selfsup.data import DigitsDataModule, ViewGroup
from selfsup.methods import AMDIM, BYOL, CPC, DINO, MAE, DenoisingAutoencoder, Distillation, MoCo, MoCoV3, SimCLR
from selfsup.methods.deep_infomax import DeepInfoMax
from selfsup.methods.jigsaw import Jigsaw
from selfsup.methods.relative_position import RelativePosition
from selfsup.methods.rotation import RotationPrediction
from selfsup.runtime import RandomStateCheckpoint, SafeCheckpointIO
from tests.helpers import quiet_trainer, random_digits_backbone

#: The distillation entry's teacher file, written once for this module by ``distillation_teacher``.
TEACHER = {}
COMMON = dict(backbone="small_conv", backbone_kwargs={"width": 8}, warmup_epochs=1, lr=0.1)
METHODS = {
    "simclr": (lambda: SimCLR(**COMMON, projection_dim=16), dict(image_size=16)),
    "moco": (lambda: MoCo(**COMMON, queue_size=64, projection_dim=16, split_bn_groups=2), dict(image_size=16)),
    "dino": (  # the teacher, the centre, the frozen last layer's epoch, multi-crop's crops, the decay's cosine
        lambda: DINO(
            **COMMON,
            output_dim=32,
            head_hidden_dim=16,
            bottleneck_dim=8,
            freeze_last_layer_epochs=1,
            weight_decay=0.04,
            final_weight_decay=0.4,
        ),
        dict(image_size=16, view_groups=[ViewGroup(count=2), ViewGroup(count=2, image_size=8)]),
    ),
    "mae": (  # the random masks: torch's generator, restored from the checkpoint
        lambda: MAE(
            **{**COMMON, "backbone": "vit_micro", "backbone_kwargs": {"num_layers": 2}, "lr": 1e-3},
            decoder_dim=32,
            decoder_depth=1,
            decoder_heads=4,
            optimizer="adamw",
        ),
        dict(image_size=16, num_views=1),
    ),
    "moco_v3": (  # a ViT: the momentum encoder, the cosine momentum's step
        lambda: MoCoV3(
            **{**COMMON, "backbone": "vit_micro", "backbone_kwargs": {"num_layers": 2}},
            projection_hidden_dim=32,
            projection_dim=16,
            prediction_hidden_dim=32,
            freeze_patch_embedding=True,
        ),
        dict(image_size=16),
    ),
    "rotation": (lambda: RotationPrediction(**COMMON), dict(image_size=16, num_views=1)),
    "jigsaw": (
        lambda: Jigsaw(**COMMON, num_permutations=10, classifier_hidden_dim=32),
        dict(image_size=24, num_views=1),
    ),
    "relative_position": (
        lambda: RelativePosition(**COMMON, classifier_hidden_dim=32),
        dict(image_size=24, num_views=1),
    ),
    "dim": (
        lambda: DeepInfoMax(
            **{**COMMON, "lr": 0.01}, estimator="dv", global_weight=0.5, prior_weight=0.1, encoding_dim=16
        ),
        dict(image_size=16, num_views=1),
    ),
    "amdim": (  # the 5t5 source locations are random draws to restore
        lambda: AMDIM(**{**COMMON, "lr": 0.01}, optimizer="adamw", embedding_dim=16, score_clip=2.0),
        dict(image_size=16),
    ),
    "byol": (  # the target network and the cosine momentum's step
        lambda: BYOL(**COMMON, projection_hidden_dim=32, projection_dim=16, prediction_hidden_dim=32),
        dict(image_size=16),
    ),
    "autoencoder": (  # greedy: stage 0, stage 1, then end to end; the resume crosses into the last phase
        lambda: DenoisingAutoencoder(**COMMON, image_size=16, encoder_stage=1, greedy_stages=True, epochs_per_stage=1),
        dict(image_size=16, num_views=1),
    ),
    "cpc": (
        lambda: CPC(
            **COMMON,
            grid_size=3,
            patch_size=8,
            patch_stride=4,
            prediction_steps=2,
            target_dim=16,
            context_hidden_dim=16,
            context_layers=2,
            patch_jitter=1,
            patch_flip_prob=0.5,
        ),
        dict(image_size=18, num_views=1),  # the 16-px grid at a random offset: more random draws to restore
    ),
    "distillation": (  # SEED's queue of teacher embeddings (it wraps around), the teacher reloaded from its file
        lambda: Distillation(**COMMON, teacher=TEACHER["path"], loss="seed", queue_size=64, projection_hidden_dim=16),
        dict(image_size=16, num_views=1),
    ),
}
EPOCHS, BATCHES = 3, 3


@pytest.fixture(scope="module", autouse=True)
def distillation_teacher(tmp_path_factory):
    """A random small conv net of width 16 as the distillation entry's teacher; the global generator is left alone."""
    with torch.random.fork_rng():
        TEACHER["path"] = random_digits_backbone(tmp_path_factory.mktemp("teacher") / "backbone.pt", width=16)


class CrashAtEpoch(pl.Callback):
    """Die when ``epoch`` starts, as a killed job would: after that epoch's predecessor was saved."""

    def __init__(self, epoch: int | None) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def _fit(method, root, crash_at=None, ckpt_path=None, num_workers=0, **trainer_overrides):
    """A fresh process's view: seed, build, fit (the CLI's ``seed_everything`` then ``fit``)."""
    build, data = METHODS[method]
    pl.seed_everything(0, verbose=False)
    model = build()
    last = ModelCheckpoint(root / "checkpoints", "last", every_n_epochs=1, save_on_train_epoch_end=True)
    settings = dict(
        deterministic=True,
        max_epochs=EPOCHS,
        limit_train_batches=BATCHES,
        enable_checkpointing=True,
        callbacks=[last, RandomStateCheckpoint(), CrashAtEpoch(crash_at)],
        plugins=[SafeCheckpointIO()],
    )
    trainer = quiet_trainer(root, **{**settings, **trainer_overrides})
    datamodule = DigitsDataModule(batch_size=32, num_workers=num_workers, **data)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return model, trainer


def _assert_same_state(model, trainer, reference, reference_trainer):
    state, expected = model.state_dict(), reference.state_dict()
    assert state.keys() == expected.keys()
    different = [name for name in expected if not torch.equal(state[name], expected[name])]
    assert not different, different
    for optimizer, reference_optimizer in zip(trainer.optimizers, reference_trainer.optimizers):
        for mine, theirs in zip(optimizer.state.values(), reference_optimizer.state.values()):
            for key in theirs:
                assert torch.equal(torch.as_tensor(mine[key]), torch.as_tensor(theirs[key])), key
    assert trainer.current_epoch == reference_trainer.current_epoch
    assert trainer.global_step == reference_trainer.global_step
    assert trainer.lr_scheduler_configs[0].scheduler.state_dict() == (
        reference_trainer.lr_scheduler_configs[0].scheduler.state_dict()
    )


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_after_a_crash_ends_bit_identical_to_the_uninterrupted_run(tmp_path, method):
    reference, reference_trainer = _fit(method, tmp_path / "uninterrupted")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit(method, tmp_path / "crashed", crash_at=2)
    last = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    model, trainer = _fit(method, tmp_path / "crashed", ckpt_path=last)
    _assert_same_state(model, trainer, reference, reference_trainer)


@pytest.mark.slow
def test_resume_is_exact_with_augmentation_in_worker_processes(tmp_path):
    reference, reference_trainer = _fit("simclr", tmp_path / "uninterrupted", num_workers=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit("simclr", tmp_path / "crashed", crash_at=2, num_workers=2)
    last = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    model, trainer = _fit("simclr", tmp_path / "crashed", ckpt_path=last, num_workers=2)
    _assert_same_state(model, trainer, reference, reference_trainer)


@pytest.mark.slow
def test_without_the_random_generators_the_resumed_run_would_differ(tmp_path):
    """The control: the generators in the checkpoint are what makes the resume exact."""
    reference, _ = _fit("simclr", tmp_path / "uninterrupted")
    with pytest.raises(RuntimeError):
        _fit("simclr", tmp_path / "crashed", crash_at=2)
    last = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    del checkpoint[RANDOM_STATES_KEY]
    torch.save(checkpoint, last)
    model, _ = _fit("simclr", tmp_path / "crashed", ckpt_path=last)
    state, expected = model.state_dict(), reference.state_dict()
    assert not all(torch.equal(state[name], expected[name]) for name in expected)


@pytest.mark.slow
def test_mid_epoch_checkpoint_continues_without_repeating_or_skipping_an_epoch(tmp_path):
    reference, reference_trainer = _fit("moco", tmp_path / "uninterrupted")
    mid_epoch = ModelCheckpoint(tmp_path / "mid", "{step}", every_n_train_steps=4, save_top_k=-1)
    with pytest.raises(RuntimeError):
        _fit("moco", tmp_path / "crashed", crash_at=2, callbacks=[mid_epoch, RandomStateCheckpoint(), CrashAtEpoch(2)])
    checkpoint = tmp_path / "mid" / "step=4.ckpt"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    model, trainer = _fit("moco", tmp_path / "crashed", ckpt_path=checkpoint)
    assert (trainer.current_epoch, trainer.global_step) == (EPOCHS, EPOCHS * BATCHES)
    assert trainer.optimizers[0].param_groups[0]["lr"] == reference_trainer.optimizers[0].param_groups[0]["lr"]
    assert int(model.queue.pointer) == int(reference.queue.pointer)


class _TargetsAtStepStart(pl.Callback):
    """The momentum targets as each step begins: after the previous step's update."""

    def __init__(self):
        self.by_step = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.by_step[trainer.global_step] = {
            name: value.clone() for name, value in pl_module.state_dict().items() if name.startswith("target_")
        }


@pytest.mark.slow
def test_a_checkpoint_saved_every_n_steps_holds_the_momentum_targets_of_its_step(tmp_path):
    """Callbacks save before the module's batch-end hook: the EMA must already be done by then."""
    mid_epoch = ModelCheckpoint(tmp_path / "mid", "{step}", every_n_train_steps=4, save_top_k=-1)
    targets = _TargetsAtStepStart()
    _fit("byol", tmp_path / "run", callbacks=[mid_epoch, targets])
    saved = torch.load(tmp_path / "mid" / "step=4.ckpt", weights_only=True)["state_dict"]
    expected = targets.by_step[4]
    assert expected and all(torch.equal(saved[name], value) for name, value in expected.items())
    assert not all(torch.equal(expected[name], value) for name, value in targets.by_step[3].items())
