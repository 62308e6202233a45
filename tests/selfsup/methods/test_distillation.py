"""Distillation on the shell: a frozen teacher untouched by training, its input format, its file's errors, the queue."""

import pytest
import torch
import torch.nn.functional as F

from selfsup.backbones import build_backbone
from selfsup.checkpoints import InputFormat, export_backbone, load_backbone
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods import Distillation
from selfsup.methods.distillation import TEACHER_KEY, reformat
from tests.helpers import quiet_trainer, random_digits_backbone

pytestmark = pytest.mark.usefixtures("one_thread")

DIGITS = InputFormat(16, DigitsDataModule.mean, DigitsDataModule.std)
TINY = dict(backbone="small_conv", backbone_kwargs={"width": 4}, warmup_epochs=0, queue_size=32)


@pytest.fixture
def teacher_file(tmp_path):
    """A random small conv net of width 8 (the student's is 4), recorded at the digits' format."""
    return random_digits_backbone(tmp_path / "teacher.pt", seed=0, width=8)


def _model(teacher: str, **overrides) -> Distillation:
    torch.manual_seed(0)
    return Distillation(teacher=teacher, **{**TINY, **overrides})


def _fit(model, root, steps: int = 3, ckpt_path=None, batch_size: int = 16):
    trainer = quiet_trainer(root, max_steps=steps)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=batch_size, num_views=1), ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize("loss", ["feature_regression", "seed"])
def test_training_moves_the_student_and_leaves_the_teacher_bit_identical(tmp_path, teacher_file, loss):
    """SGD with momentum and a large weight decay: the teacher's weights and batch-norm statistics stay exact."""
    model = _model(teacher_file, loss=loss, optimizer="sgd", lr=0.5, weight_decay=0.1)
    teacher_before = {name: value.clone() for name, value in model.teacher.state_dict().items()}
    student_before = [p.detach().clone() for p in model.backbone.parameters()]
    trainer = _fit(model, tmp_path)

    teacher_after = model.teacher.state_dict()
    assert teacher_after.keys() == teacher_before.keys()
    assert all(torch.equal(teacher_after[name], value) for name, value in teacher_before.items())
    assert any(name.endswith("running_mean") for name in teacher_before)
    assert all(not torch.equal(a, b) for a, b in zip(model.backbone.parameters(), student_before))
    grouped = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert grouped and not grouped & {id(p) for p in model.teacher.parameters()}
    assert all(not p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.backbone.training and not any(m.training for m in model.teacher.modules())


@pytest.mark.parametrize("loss", ["feature_regression", "seed"])
def test_on_a_fixed_batch_a_few_dozen_steps_bring_the_student_to_the_teacher(teacher_file, loss):
    model = _model(teacher_file, loss=loss).train()
    images = torch.randn(32, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam([*model.backbone.parameters(), *model.projector.parameters()], lr=1e-2)
    teacher = model.teacher_embeddings(images)
    losses = []
    for _ in range(30):
        loss = model.distillation_loss(model.projector(model.backbone(images)), teacher)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses


def test_the_checkpoint_holds_the_student_and_the_queue_and_pins_the_teacher(tmp_path, teacher_file):
    model = _model(teacher_file, loss="seed")
    trainer = _fit(model, tmp_path / "run", steps=3)
    assert int(model.queue.pointer) == 48 % 32
    trainer.save_checkpoint(tmp_path / "distill.ckpt")
    checkpoint = torch.load(tmp_path / "distill.ckpt", weights_only=True)
    assert not [name for name in checkpoint["state_dict"] if name.startswith("teacher.")]
    assert checkpoint[TEACHER_KEY] == {"path": teacher_file, "sha256": model.teacher_sha256}

    restored = Distillation.load_from_checkpoint(tmp_path / "distill.ckpt", weights_only=True)
    assert torch.equal(restored.queue.keys, model.queue.keys) and int(restored.queue.pointer) == 16
    student, _ = load_backbone(tmp_path / "distill.ckpt")  # evaluated like any checkpoint: the student
    assert all(torch.equal(student.state_dict()[n], v) for n, v in model.backbone.state_dict().items())

    resumed = _model(teacher_file, loss="seed")
    torch.manual_seed(5)
    resumed.queue.keys.copy_(F.normalize(torch.randn_like(resumed.queue.keys), dim=1))
    _fit(resumed, tmp_path / "resumed", steps=3, ckpt_path=tmp_path / "distill.ckpt")
    assert torch.equal(resumed.queue.keys, model.queue.keys) and int(resumed.queue.pointer) == 16


def test_resuming_with_another_teacher_in_the_file_is_refused(tmp_path, teacher_file):
    model = _model(teacher_file, loss="seed")
    trainer = _fit(model, tmp_path / "run", steps=1)
    trainer.save_checkpoint(tmp_path / "distill.ckpt")
    random_digits_backbone(teacher_file, seed=1, width=8)  # the file replaced by another teacher
    with pytest.raises(ConfigurationError, match=r"^model\.init_args\.teacher=.* holds other weights") as error:
        _fit(_model(teacher_file, loss="seed"), tmp_path / "resumed", steps=2, ckpt_path=tmp_path / "distill.ckpt")
    assert "\n" not in str(error.value)


def test_reformat_leaves_images_already_in_the_teachers_format_alone():
    images = torch.randn(2, 3, 16, 16)
    assert reformat(images, DIGITS, DIGITS) is images


def test_reformat_renormalises_pixel_by_pixel_and_resizes_bilinearly():
    source = InputFormat(2, (0.5, 0.0, 1.0), (0.25, 1.0, 2.0))
    target = InputFormat(1, (0.0, 0.5, 0.5), (0.5, 0.5, 0.25))
    pixels = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).expand(1, 3, 2, 2)  # the same raw pixels in every channel
    images = (pixels - torch.tensor(source.mean).view(1, 3, 1, 1)) / torch.tensor(source.std).view(1, 3, 1, 1)
    # 2x2 -> 1x1, antialiased bilinear: the four pixels' mean, 1.5; then (1.5 - mean_t) / std_t per channel
    expected = torch.tensor([(1.5 - 0.0) / 0.5, (1.5 - 0.5) / 0.5, (1.5 - 0.5) / 0.25]).view(1, 3, 1, 1)
    torch.testing.assert_close(reformat(images, source, target), expected)
    same_size = InputFormat(2, target.mean, target.std)
    by_hand = torch.stack([(pixels[0, c] - target.mean[c]) / target.std[c] for c in range(3)])[None]
    torch.testing.assert_close(reformat(images, source, same_size), by_hand)
    upsized = reformat(torch.full((1, 3, 4, 4), 2.0), source, InputFormat(8, source.mean, source.std))
    torch.testing.assert_close(upsized, torch.full((1, 3, 8, 8), 2.0))  # a constant image stays constant


@pytest.mark.parametrize(
    ("recorded", "teacher_format"),
    [
        ({"image_size": 8, "mean": (0.5,) * 3, "std": (0.25,) * 3}, InputFormat(8, (0.5,) * 3, (0.25,) * 3)),
        ({"image_size": 8}, InputFormat(8, DIGITS.mean, DIGITS.std)),
        ({}, DIGITS),
    ],
    ids=["size-and-normalisation", "size-only", "nothing-recorded"],
)
def test_the_teacher_sees_each_view_converted_to_the_format_its_file_records(tmp_path, recorded, teacher_format):
    torch.manual_seed(0)
    path = tmp_path / "teacher.pt"
    export_backbone(path, build_backbone("small_conv", width=8), "small_conv", {"width": 8}, **recorded)
    model = _model(str(path))
    seen = {}
    model.backbone.register_forward_pre_hook(lambda module, args: seen.setdefault("student", args[0]))
    model.teacher.register_forward_pre_hook(lambda module, args: seen.setdefault("teacher", args[0]))
    _fit(model, tmp_path / "run", steps=1)
    assert model.input_formats == (DIGITS, teacher_format)
    assert torch.equal(seen["teacher"], reformat(seen["student"], DIGITS, teacher_format))
    assert seen["teacher"].shape[-1] == teacher_format.image_size
    if not recorded:
        assert seen["teacher"] is seen["student"]


def _bad_teachers(tmp_path):
    (tmp_path / "empty.pt").touch()
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    (tmp_path / "a_directory").mkdir()
    torch.save({"conv.weight": torch.ones(2)}, tmp_path / "bare.pt")
    return {
        "missing": (tmp_path / "missing.pt", "checkpoint not found"),
        "directory": (tmp_path / "a_directory", "is a directory"),
        "empty": (tmp_path / "empty.pt", "not a readable checkpoint"),
        "text": (tmp_path / "notes.txt", "not a readable checkpoint"),
        "no-architecture": (tmp_path / "bare.pt", "holds weights without an architecture"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "text", "no-architecture"])
def test_a_teacher_that_cannot_be_loaded_is_one_line_naming_the_key_and_the_fix(tmp_path, case):
    path, reason = _bad_teachers(tmp_path)[case]
    with pytest.raises(ConfigurationError, match=r"^model\.init_args\.teacher=") as error:
        _model(str(path))
    message = str(error.value)
    assert reason in message and "Set model.init_args.teacher to a backbone.pt" in message
    assert "\n" not in message


def test_a_teacher_of_another_architecture_than_named_is_one_line(teacher_file):
    with pytest.raises(ConfigurationError, match=r"^model\.init_args\.teacher=.* holds backbone 'small_conv'") as error:
        _model(teacher_file, teacher_backbone="resnet18")
    assert "\n" not in str(error.value)


def test_queue_size_must_be_a_multiple_of_the_global_batch(tmp_path, teacher_file):
    with pytest.raises(ConfigurationError, match=r"queue_size=24 must be a multiple of .* per step, 16 .* e\.g\. 16"):
        _fit(_model(teacher_file, loss="seed", queue_size=24), tmp_path)


def test_the_projector_maps_the_students_width_to_the_teachers(teacher_file):
    assert _model(teacher_file, projection="linear").projector(torch.randn(2, 32)).shape == (2, 64)
    mlp = _model(teacher_file, projection_hidden_dim=12).projector
    assert [layer.out_features for layer in mlp if isinstance(layer, torch.nn.Linear)] == [12, 64]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "kl"}, "loss must be feature_regression or seed, got 'kl'"),
        ({"projection": "conv"}, "projection must be linear or mlp"),
        ({"projection_hidden_dim": 0}, "projection_hidden_dim must be an integer >= 1, got 0"),
        ({"queue_size": 0}, "queue_size must be an integer >= 1"),
        ({"queue_size": 2.5}, "queue_size must be an integer >= 1"),
        ({"student_temperature": 0.0}, "student_temperature must be a finite number > 0, got 0.0"),
        ({"teacher_temperature": float("nan")}, "teacher_temperature must be a finite number > 0, got nan"),
        ({"teacher_temperature": "1e-4"}, "teacher_temperature must be a finite number > 0, got '1e-4'"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(teacher_file, kwargs, message):
    with pytest.raises(ConfigurationError, match=f"^model\\.init_args\\.{message}") as error:
        _model(teacher_file, **kwargs)
    assert "\n" not in str(error.value)
