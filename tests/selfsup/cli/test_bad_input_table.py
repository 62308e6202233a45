"""Bad input to ``selfsup fit``, one row a case: refused before any work, in one line, nothing written.

Each row: an id, the arguments after ``selfsup fit``, the expected exit code and a
fragment of the expected message. Every row runs in this process against a run
directory that already holds a file; afterwards that directory holds nothing new.
A value the command wrongly accepted would train for two batches and fail the row.
Adding a case is adding a line.
"""

from pathlib import Path

import pytest

from selfsup.cli import main
from tests.helpers import FAST, PRETRAIN_CONFIGS

SIMCLR = ["--config", str(PRETRAIN_CONFIGS / "simclr_digits.yaml")]
MOCO = ["--config", str(PRETRAIN_CONFIGS / "moco_v2_digits.yaml")]
JIGSAW = ["--config", str(PRETRAIN_CONFIGS / "jigsaw_digits.yaml")]
RELPOS = ["--config", str(PRETRAIN_CONFIGS / "relative_position_digits.yaml")]
ROTATION = ["--config", str(PRETRAIN_CONFIGS / "rotation_digits.yaml")]
DIM = ["--config", str(PRETRAIN_CONFIGS / "dim_digits.yaml")]
CIFAR = ["--config", str(PRETRAIN_CONFIGS / "simclr_cifar10.yaml")]


def model(key: str, value: str) -> list[str]:
    return [f"--model.init_args.{key}={value}"]


def data(key: str, value: str) -> list[str]:
    return [f"--data.init_args.{key}={value}"]


ROWS = [
    # The training shell, through SimCLR.
    ("lr zero", SIMCLR + model("lr", "0"), 2, "model.init_args.lr must be a finite number > 0"),
    ("lr negative", SIMCLR + model("lr", "-0.1"), 2, "model.init_args.lr must be"),
    ("lr NaN", SIMCLR + model("lr", ".nan"), 2, "model.init_args.lr must be"),
    ("lr infinite", SIMCLR + model("lr", ".inf"), 2, "model.init_args.lr must be"),
    ("lr not a number", SIMCLR + model("lr", "fast"), 2, "lr"),
    ("probe lr zero", SIMCLR + model("probe_lr", "0"), 2, "model.init_args.probe_lr must be"),
    ("weight decay negative", SIMCLR + model("weight_decay", "-1e-4"), 2, "model.init_args.weight_decay must be"),
    ("weight decay NaN", SIMCLR + model("weight_decay", ".nan"), 2, "model.init_args.weight_decay must be"),
    ("momentum one", SIMCLR + model("momentum", "1.0"), 2, "model.init_args.momentum must be in [0, 1)"),
    ("momentum negative", SIMCLR + model("momentum", "-0.9"), 2, "model.init_args.momentum must be"),
    ("warm-up negative", SIMCLR + model("warmup_epochs", "-1"), 2, "model.init_args.warmup_epochs must be"),
    ("warm-up infinite", SIMCLR + model("warmup_epochs", ".inf"), 2, "model.init_args.warmup_epochs must be"),
    ("final lr above one", SIMCLR + model("final_lr_fraction", "2"), 2, "model.init_args.final_lr_fraction"),
    ("reference batch zero", SIMCLR + model("reference_batch_size", "0"), 2, "reference_batch_size must be >= 1"),
    ("kNN k zero", SIMCLR + model("knn_k", "0"), 2, "model.init_args.knn_k must be >= 1"),
    ("kNN k negative", SIMCLR + model("knn_k", "-5"), 2, "model.init_args.knn_k must be >= 1"),
    ("kNN k not an integer", SIMCLR + model("knn_k", "2.5"), 2, "knn_k"),
    ("kNN temperature zero", SIMCLR + model("knn_temperature", "0"), 2, "model.init_args.knn_temperature must be"),
    ("kNN temperature NaN", SIMCLR + model("knn_temperature", ".nan"), 2, "model.init_args.knn_temperature must be"),
    ("unknown optimiser", SIMCLR + model("optimizer", "adam"), 2, "optimizer"),
    ("unknown non-finite policy", SIMCLR + model("non_finite_loss", "ignore"), 2, "non_finite_loss"),
    ("unknown backbone", SIMCLR + model("backbone", "resnet9000"), 2, "unknown backbone 'resnet9000'"),
    ("unknown backbone argument", SIMCLR + model("backbone_kwargs", "{depth_of: 3}"), 2, "takes no argument"),
    ("unknown method key", SIMCLR + model("temprature", "0.5"), 2, "temprature"),
    ("SimCLR temperature zero", SIMCLR + model("temperature", "0"), 2, "temperature must be a finite number > 0"),
    ("SimCLR temperature NaN", SIMCLR + model("temperature", ".nan"), 2, "temperature must be a finite number > 0"),
    ("SimCLR temperature infinite", SIMCLR + model("temperature", ".inf"), 2, "temperature must be a finite"),
    ("projection width zero", SIMCLR + model("projection_dim", "0"), 2, "model.init_args.projection_dim must be"),
    ("projection hidden negative", SIMCLR + model("projection_hidden_dim", "-1"), 2, "projection_hidden_dim must be"),
    # The data.
    ("batch zero", SIMCLR + data("batch_size", "0"), 2, "data.init_args.batch_size must be at least 1"),
    ("batch negative", SIMCLR + data("batch_size", "-5"), 2, "data.init_args.batch_size must be at least 1"),
    ("batch of one", SIMCLR + data("batch_size", "1"), 2, "at least 2 images per batch"),
    ("batch larger than the dataset", SIMCLR + data("batch_size", "2000"), 2, "fewer than one batch"),
    ("batch not an integer", SIMCLR + data("batch_size", "many"), 2, "batch_size"),
    ("workers negative", SIMCLR + data("num_workers", "-1"), 2, "data.init_args.num_workers must be >= 0"),
    ("image size zero", SIMCLR + data("image_size", "0"), 2, "data.init_args.image_size must be >= 1"),
    ("no views", SIMCLR + data("num_views", "0"), 2, "data.init_args.num_views must be >= 1"),
    ("view group of none", SIMCLR + data("view_groups", "[{count: 0}]"), 2, "view_groups.count must be an integer"),
    ("solarise twice", SIMCLR + data("view_groups", "[{augmentation: {solarize_prob: 2}}]"), 2, "solarize_prob must"),
    ("kNN bank empty", SIMCLR + data("knn_bank_size", "0"), 2, "data.init_args.knn_bank_size must be"),
    ("crop scale reversed", SIMCLR + data("augmentation.crop_scale", "[0.9, 0.1]"), 2, "augmentation.crop_scale"),
    ("crop scale zero", SIMCLR + data("augmentation.crop_scale", "[0.0, 1.0]"), 2, "augmentation.crop_scale"),
    ("jitter probability above one", SIMCLR + data("augmentation.jitter_prob", "1.5"), 2, "augmentation.jitter_prob"),
    ("flip probability NaN", SIMCLR + data("augmentation.horizontal_flip_prob", ".nan"), 2, "horizontal_flip_prob"),
    ("jitter strength negative", SIMCLR + data("augmentation.jitter_strength", "-1"), 2, "jitter_strength"),
    ("blur sigma negative", SIMCLR + data("augmentation.blur_sigma", "[-1, 2]"), 2, "augmentation.blur_sigma"),
    ("augment on a GPU name", SIMCLR + data("augment_on", "gpu"), 2, "augment_on"),
    ("missing data directory", CIFAR + data("data_dir", "/nonexistent/cifar"), 2, "expected the directory"),
    # MoCo.
    ("queue zero", MOCO + model("queue_size", "0"), 2, "model.init_args.queue_size must be >= 1"),
    ("queue negative", MOCO + model("queue_size", "-4096"), 2, "model.init_args.queue_size must be >= 1"),
    ("queue not a multiple", MOCO + model("queue_size", "1000"), 2, "must be a multiple of the keys enqueued"),
    ("encoder momentum above one", MOCO + model("encoder_momentum", "1.5"), 2, "encoder_momentum must be in [0, 1]"),
    ("encoder momentum NaN", MOCO + model("encoder_momentum", ".nan"), 2, "encoder_momentum must be in [0, 1]"),
    ("split BN zero groups", MOCO + model("split_bn_groups", "0"), 2, "split_bn_groups must be >= 1"),
    ("split BN not dividing", MOCO + model("split_bn_groups", "3"), 2, "must be a multiple of split_bn_groups"),
    ("MoCo temperature negative", MOCO + model("temperature", "-0.2"), 2, "temperature must be a finite number > 0"),
    ("unknown MoCo head", MOCO + model("projection", "deep"), 2, "projection"),
    # Pretext tasks.
    ("no permutations", JIGSAW + model("num_permutations", "0"), 2, "num_permutations must be in [1, 10000]"),
    ("too many permutations", JIGSAW + model("num_permutations", "400000"), 2, "num_permutations must be in"),
    ("jigsaw tile zero", JIGSAW + model("tile_fraction", "0"), 2, "model.init_args.tile_fraction must be in (0, 1]"),
    ("jigsaw tile above one", JIGSAW + model("tile_fraction", "1.5"), 2, "tile_fraction must be in (0, 1]"),
    ("jigsaw tile NaN", JIGSAW + model("tile_fraction", ".nan"), 2, "tile_fraction must be in (0, 1]"),
    ("relative tile negative", RELPOS + model("tile_fraction", "-0.1"), 2, "tile_fraction must be in (0, 1]"),
    ("rotation stage beyond", ROTATION + model("head_stage", "7"), 2, "head_stage must be null or a stage"),
    ("rotation head zero", ROTATION + model("head_hidden_dim", "0"), 2, "head_hidden_dim must be an integer >= 1"),
    # Deep InfoMax.
    ("local stage is the last", DIM + model("local_stage", "3"), 2, "is not a stage before the last"),
    ("unknown estimator", DIM + model("estimator", "kl"), 2, "estimator"),
    ("DV rate zero", DIM + model("estimator", "dv") + model("dv_ema_rate", "0"), 2, "moving-average rate"),
    ("global weight negative", DIM + model("global_weight", "-1"), 2, "model.init_args.global_weight must be"),
    ("local weight NaN", DIM + model("local_weight", ".nan"), 2, "model.init_args.local_weight must be"),
    ("no MI term", DIM + model("global_weight", "0") + model("local_weight", "0"), 2, "global_weight + local_weight"),
    ("discriminator lr zero", DIM + model("discriminator_lr", "0"), 2, "discriminator_lr must be > 0"),
    ("encoding width zero", DIM + model("encoding_dim", "0"), 2, "encoding_dim must be >= 1"),
    # The trainer and the command line.
    ("more devices than cores", SIMCLR + ["--trainer.devices", "512"], 2, "at most"),
    ("epochs not a number", SIMCLR + ["--trainer.max_epochs", "many"], 2, "max_epochs"),
    ("Lightning optimiser", SIMCLR + ["--optimizer", "Adam"], 2, "model.init_args.optimizer"),
    ("Lightning schedule", SIMCLR + ["--lr_scheduler", "StepLR"], 2, "model.init_args.optimizer"),
    ("config file missing", ["--config", "/nonexistent/run.yaml"], 2, "/nonexistent/run.yaml"),
]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / "notes.txt").write_text("an earlier file that must survive\n")
    return directory


def files_under(directory: Path) -> dict[str, bytes]:
    """Every file's bytes but the run-directory lock's, which names the process that claimed the directory."""
    files = [path for path in directory.rglob("*") if path.is_file() and path.name != ".selfsup.lock"]
    return {str(path.relative_to(directory)): path.read_bytes() for path in files}


@pytest.mark.parametrize(("arguments", "code", "fragment"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_is_refused_in_one_line_before_any_work(run_dir, capsys, arguments, code, fragment):
    before = files_under(run_dir)
    run = ["--trainer.default_root_dir", str(run_dir), *FAST, "--trainer.max_epochs", "1", "--trainer.logger", "false"]
    run += ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]
    config, overrides = arguments[:2], arguments[2:]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *config, *run, *overrides])
    error = capsys.readouterr().err
    assert exit_info.value.code == code, error[-2000:]
    assert fragment in error, error[-2000:]
    assert "Traceback" not in error
    assert files_under(run_dir) == before


def test_the_table_has_a_row_per_case_and_no_duplicates():
    assert len(ROWS) >= 60
    assert len({row[0] for row in ROWS}) == len(ROWS)
    assert len({tuple(row[1]) for row in ROWS}) == len(ROWS)


def test_a_run_that_takes_no_step_exits_non_zero_without_a_backbone(run_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *SIMCLR, "--trainer.default_root_dir", str(run_dir), *FAST, "--trainer.max_epochs", "0"])
    assert exit_info.value.code == 2
    assert "took no optimiser step" in capsys.readouterr().err
    assert not (run_dir / "backbone.pt").exists()
