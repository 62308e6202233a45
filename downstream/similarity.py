"""Which source dataset is closest to my target? Task2Vec and domain similarity between datasets.

    selfsup similarity --probe runs/demo/simclr/backbone.pt --datasets '{digits: null, digits_transfer: null}'

One probe network (a checkpoint entry, as in the evaluation matrix) looks at every dataset's
labelled training split (at most ``max_images`` images each, class-balanced, drawn by
``seed``) and gives, for every ordered pair of datasets:

- the Task2Vec distance (Achille et al. 2019; textbook eqs. 6.16-6.18) between the two
  tasks' Fisher embeddings (:mod:`downstream.transferability.task2vec`): 0 for the same task;
- the earth mover's distance between their class-weighted feature distributions in the
  probe's features, and Cui et al.'s domain similarity exp(-gamma EMD)
  (:mod:`downstream.transferability.domain_similarity`): 0 and 1 for the same domain. gamma
  = 0.01 suits the scale of Cui et al.'s ResNet features; with other features read the
  distance itself, or choose gamma near 1 / (a typical distance).

Writes ``similarity.csv`` (a row per pair and measure), ``similarity.md`` and
``similarity.png`` (one heat map per measure) into ``output_dir``, and prints the table.
"""

import csv
import io
import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from jsonargparse import CLI  # noqa: E402
from pytorch_lightning.utilities import rank_zero_only  # noqa: E402
from tqdm import tqdm  # noqa: E402

from downstream.command_line import EvaluateParser  # noqa: E402
from downstream.datasets import check_dataset, load_dataset  # noqa: E402
from downstream.extraction import extract  # noqa: E402
from downstream.hardware import Hardware  # noqa: E402
from downstream.protocols import Task  # noqa: E402
from downstream.representations import checkpoint_rows  # noqa: E402
from downstream.splits import balanced_subset, labels_of  # noqa: E402
from downstream.transferability.domain_similarity import earth_movers_distance  # noqa: E402
from downstream.transferability.task2vec import task_distances, task_embedding  # noqa: E402
from selfsup.checkpoints import atomic_write_bytes  # noqa: E402
from selfsup.errors import ConfigurationError, is_finite, require  # noqa: E402

MEANINGS = {
    "task2vec_distance": "0 = the same task",
    "earth_movers_distance": "0 = the same domain",
    "domain_similarity": "exp(-gamma EMD); 1 = the same domain",
}


def dataset_similarity(
    probe: str | dict,
    datasets: dict[str, str | None],
    output_dir: str = "runs/similarity",
    max_images: int = 500,
    gamma: float = 0.01,
    seed: int = 0,
    hardware: Hardware = Hardware(),
) -> dict[str, np.ndarray]:
    """Task2Vec distance, EMD and domain similarity between every pair of ``datasets``, seen by ``probe``.

    Args:
        probe: the network that looks at every dataset: a checkpoint path or entry
            ``{path, backbone, backbone_kwargs, prefix, image_size, mean, std}`` (docs/checkpoints.md).
        datasets: name -> data directory (``null`` for the embedded digits); at least two.
        output_dir: where similarity.csv, similarity.md and similarity.png are written.
        max_images: at most this many labelled training images per dataset, the same number per class.
        gamma: the domain similarity's exp(-gamma d) (0.01 in Cui et al. 2018).
        seed: draws the images.
    """
    require(isinstance(datasets, dict) and len(datasets) >= 2, "datasets", datasets, "a mapping of at least 2 datasets")
    require(
        isinstance(max_images, int) and not isinstance(max_images, bool) and max_images >= 2,
        "max_images",
        max_images,
        "an integer >= 2",
    )
    require(is_finite(gamma) and gamma > 0, "gamma", gamma, "a finite number > 0")
    require(isinstance(output_dir, str) and output_dir.strip() != "", "output_dir", output_dir, "a directory path")
    for dataset, data_dir in datasets.items():
        check_dataset(dataset, data_dir)
    try:
        (row,) = checkpoint_rows({"probe": probe})
    except ConfigurationError as error:  # it names the matrix's key
        raise ConfigurationError(str(error).replace("checkpoints.probe", "probe")) from None
    network = row.network(seed).eval()
    names = list(datasets)
    embeddings, features = {}, {}
    for name in tqdm(names, desc="datasets", unit="dataset", file=sys.stderr):
        images, labels, task = _sample(name, datasets[name], row, max_images, seed)
        embeddings[name] = task_embedding(network, images, labels, seed=seed)
        (stage,), extracted_labels = extract(network, task.images("train"), hardware)
        features[name] = (stage, extracted_labels)
    _, distances = task_distances(embeddings)
    transport = np.array(
        [[earth_movers_distance(*features[source], *features[target]) for target in names] for source in names]
    )
    matrices = {
        "task2vec_distance": np.asarray(distances),
        "earth_movers_distance": transport,
        "domain_similarity": np.exp(-gamma * transport),
    }
    if rank_zero_only.rank == 0:
        print(_write(matrices, names, Path(output_dir)))
    return matrices


def _sample(name: str, data_dir, row, max_images: int, seed: int):
    """At most ``max_images`` labelled training images of ``name``, class-balanced, in the probe's input format."""
    splits = load_dataset(name, row.input_format.image_size, data_dir)
    labels = labels_of(splits.train)
    per_class = max(1, max_images // splits.num_classes)
    smallest = int(torch.bincount(labels).min())
    indices = balanced_subset(labels, min(per_class, smallest), seed)
    format_ = row.input_format.as_dict()
    task = Task(splits.train, splits.test, indices, splits.num_classes, crop_fraction=splits.crop_fraction, **format_)
    dataset = task.images("train")
    images = torch.stack([dataset[index][0] for index in range(len(dataset))])
    return images, labels[indices], task


def _write(matrices: dict[str, np.ndarray], names: list[str], output_dir: Path) -> str:
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow(["source", "target", "measure", "value"])
    for measure, matrix in matrices.items():
        writer.writerows((s, t, measure, float(matrix[i, j])) for i, s in enumerate(names) for j, t in enumerate(names))
    atomic_write_bytes(rows.getvalue().encode(), output_dir / "similarity.csv")
    lines = []
    for measure, matrix in matrices.items():
        lines += [
            f"**{measure}** ({MEANINGS[measure]})",
            "",
            "| | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        lines += [f"| {s} | " + " | ".join(f"{v:.4g}" for v in matrix[i]) + " |" for i, s in enumerate(names)]
        lines.append("")
    table = "\n".join(lines).rstrip()
    atomic_write_bytes((table + "\n").encode(), output_dir / "similarity.md")
    figure, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 4), squeeze=False)
    for axis, (measure, matrix) in zip(axes[0], matrices.items()):
        image = axis.imshow(matrix, cmap="viridis")
        axis.set(title=measure, xticks=range(len(names)), yticks=range(len(names)))
        axis.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        axis.set_yticklabels(names, fontsize=8)
        for i in range(len(names)):
            for j in range(len(names)):
                axis.text(j, i, f"{matrix[i, j]:.3g}", ha="center", va="center", color="w", fontsize=8)
        figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, dpi=110, format="png")
    plt.close(figure)
    atomic_write_bytes(image.getvalue(), output_dir / "similarity.png")
    return table


class SimilarityParser(EvaluateParser):
    command = "similarity"


def main(arguments: list[str]) -> None:
    """Task2Vec distance and domain similarity between datasets, as one probe network sees them."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    CLI(dataset_similarity, args=arguments, as_positional=False, parser_class=SimilarityParser)
