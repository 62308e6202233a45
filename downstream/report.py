"""The evaluation matrix's outputs: CSV, a markdown table, plots, and a W&B table.

``results.csv`` holds every value (a row per checkpoint, dataset, protocol and seed);
the table and the plot report the mean ± sample standard deviation over the seeds. When
transferability scores ran, each dataset's table is followed by their section
(:mod:`downstream.transferability_report`) and ``transferability.png`` plots them.
"""

import csv
import io
import statistics
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from downstream.recipes import TransferabilityRecipe  # noqa: E402
from downstream.transferability_report import plot_scores, transferability_section  # noqa: E402
from downstream.value_names import is_protocol_value  # noqa: E402
from selfsup.checkpoints import atomic_write_bytes  # noqa: E402

ACCURACY_PROTOCOLS = ("knn", "linear", "logistic", "finetune")


@dataclass
class Result:
    checkpoint: str
    dataset: str
    protocol: str
    seed: int
    value: float


def write_report(
    results: list[Result],
    output_dir: Path,
    labels: str,
    wandb_project: str | None,
    wandb_offline: bool,
    losses: dict | None = None,
    scoring: TransferabilityRecipe = TransferabilityRecipe(),
    closing: Sequence[str] = (),
) -> str:
    """Write ``results.csv``, ``results.md``, ``results.png`` (and ``transferability.png``); return the markdown.

    ``labels`` says how many training labels were used (for the table headings); ``losses``
    maps ``(checkpoint, dataset, protocol, seed)`` to per-example test losses (for the affinity);
    ``closing`` lines end the markdown (the rows' costs).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow([field.name for field in fields(Result)])
    writer.writerows(astuple(result) for result in results)
    atomic_write_bytes(rows.getvalue().encode(), output_dir / "results.csv")
    table = markdown(results, labels, losses or {}, scoring)
    if closing:
        table += "\n\n" + "\n".join(closing)
    atomic_write_bytes((table + "\n").encode(), output_dir / "results.md")
    image = io.BytesIO()
    plot(results, image)
    atomic_write_bytes(image.getvalue(), output_dir / "results.png")
    image = io.BytesIO()
    if plot_scores(results, image):
        atomic_write_bytes(image.getvalue(), output_dir / "transferability.png")
    else:  # a report of this run's values only: no plot of scores it did not compute
        (output_dir / "transferability.png").unlink(missing_ok=True)
    if wandb_project is not None:
        log_to_wandb(results, output_dir, wandb_project, wandb_offline)
    return table


def markdown(
    results: list[Result],
    labels: str,
    losses: dict | None = None,
    scoring: TransferabilityRecipe = TransferabilityRecipe(),
) -> str:
    """One table per dataset: a row per checkpoint, a column per protocol, mean ± std cells; then the rankings."""
    seeds = _unique(result.seed for result in results)
    spread = f"mean ± std over seeds {seeds}" if len(seeds) > 1 else f"1 seed: {seeds[0]}"
    lines = []
    for dataset in _unique(result.dataset for result in results):
        rows = [result for result in results if result.dataset == dataset]
        protocols = _columns([p for p in _unique(result.protocol for result in rows) if is_protocol_value(p)])
        logme = "; LogME: evidence per example" if "logme" in protocols else ""
        lines += [f"**{dataset}**, {labels} (top-1 %, {spread}{logme})", ""]
        lines += ["| checkpoint | " + " | ".join(protocols) + " |", "|---|" + "---:|" * len(protocols)]
        for checkpoint in _unique(result.checkpoint for result in rows):
            cells = [_format(protocol, _values(rows, checkpoint, protocol)) for protocol in protocols]
            lines.append(f"| {checkpoint} | " + " | ".join(cells) + " |")
        tau = logme_ranking(rows)
        if tau is not None:
            lines += ["", f"LogME ranks the checkpoints against the linear probe with Kendall's tau = {tau:+.2f}."]
        lines += ["", *transferability_section(rows, losses or {}, scoring)]
    return "\n".join(lines).rstrip()


def _columns(protocols: list[str]) -> list[str]:
    """The protocols in order of appearance, the layer-wise probe's ``layer<k>`` together by k where the first is.

    Backbones with more stages (a ViT's blocks) add layers after the other protocols' columns.
    """
    layers = sorted((p for p in protocols if _is_layer(p)), key=lambda p: int(p[5:]))
    if not layers:
        return protocols
    first = next(index for index, p in enumerate(protocols) if _is_layer(p))
    others = [p for p in protocols if not _is_layer(p)]
    return others[:first] + layers + others[first:]


def _is_layer(protocol: str) -> bool:
    return protocol.startswith("layer") and protocol[5:].isdigit()


def logme_ranking(rows: list[Result]) -> float | None:
    """Kendall's tau between mean LogME and mean linear-probe accuracy over the checkpoints of one dataset."""
    pairs = []
    for checkpoint in _unique(result.checkpoint for result in rows):
        logme, linear = _values(rows, checkpoint, "logme"), _values(rows, checkpoint, "linear")
        if logme and linear:
            pairs.append((statistics.mean(logme), statistics.mean(linear)))
    if len(pairs) < 3:
        return None
    return float(kendalltau(*zip(*pairs)).statistic)


def plot(results: list[Result], path: Path | io.BytesIO) -> None:
    """Accuracy per protocol and checkpoint (bars), and per layer when the layer-wise probe ran (lines).

    Error bars: the standard deviation over the seeds.
    """
    datasets = _unique(result.dataset for result in results)
    layerwise = any(_is_layer(result.protocol) for result in results)
    figure, axes = plt.subplots(
        2 if layerwise else 1, len(datasets), figsize=(5.5 * len(datasets), 8 if layerwise else 4), squeeze=False
    )
    for column, dataset in enumerate(datasets):
        rows = [result for result in results if result.dataset == dataset]
        checkpoints = _unique(result.checkpoint for result in rows)
        protocols = [protocol for protocol in ACCURACY_PROTOCOLS if any(r.protocol == protocol for r in rows)]
        axis = axes[0][column]
        width = 0.8 / max(1, len(protocols))
        for offset, protocol in enumerate(protocols):
            means, stds = zip(*(_mean_std(_values(rows, checkpoint, protocol)) for checkpoint in checkpoints))
            positions = [index + offset * width for index in range(len(checkpoints))]
            axis.bar(positions, means, width, yerr=stds, capsize=2, label=protocol)
        axis.set_xticks([index + 0.4 - width / 2 for index in range(len(checkpoints))])
        axis.set_xticklabels(checkpoints, rotation=30, ha="right", fontsize=8)
        axis.set(title=dataset, ylabel="top-1 (%)")
        axis.legend(fontsize=8, loc="lower left")
        if layerwise:
            axis = axes[1][column]
            for checkpoint in checkpoints:
                layers = sorted(
                    {int(r.protocol[5:]) for r in rows if r.checkpoint == checkpoint and _is_layer(r.protocol)}
                )
                if not layers:
                    continue
                means, stds = zip(*(_mean_std(_values(rows, checkpoint, f"layer{stage}")) for stage in layers))
                axis.errorbar(layers, means, yerr=stds, fmt="o-", capsize=2, label=checkpoint)
                axis.set_xticks(layers)
            axis.set(title=f"{dataset}: linear probe per stage", xlabel="stage", ylabel="top-1 (%)")
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


def log_to_wandb(results: list[Result], output_dir: Path, project: str, offline: bool) -> None:
    import wandb

    owns_the_session = wandb.run is None
    run = wandb.init(project=project, dir=str(output_dir), mode="offline" if offline else "online", job_type="eval")
    table = wandb.Table(columns=[field.name for field in fields(Result)], data=[list(astuple(r)) for r in results])
    run.log({"evaluation/results": table, "evaluation/plot": wandb.Image(str(output_dir / "results.png"))})
    run.finish()
    if owns_the_session:
        # Stop W&B's service: processes started later would otherwise inherit its address
        # (WANDB_SERVICE) and log through it instead of starting their own runs.
        wandb.teardown()


def _values(rows: list[Result], checkpoint: str, protocol: str) -> list[float]:
    """The value of every seed."""
    return [r.value for r in rows if r.checkpoint == checkpoint and r.protocol == protocol]


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, NaN for none)."""
    if not values:
        return float("nan"), 0.0
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _format(protocol: str, values: list[float]) -> str:
    if not values:
        return ""
    digits = 3 if protocol in ("logme", "score") else 1
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def _unique(items) -> list:
    return list(dict.fromkeys(items))
