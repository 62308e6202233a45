"""The evaluation matrix's outputs: CSV, a markdown table, a plot, and a W&B table."""

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

ACCURACY_PROTOCOLS = ("knn", "linear", "finetune")


@dataclass
class Result:
    checkpoint: str
    dataset: str
    protocol: str
    value: float


def write_report(results: list[Result], output_dir: Path, wandb_project: str | None, wandb_offline: bool) -> str:
    """Write ``results.csv``, ``results.md`` and ``results.png`` into ``output_dir``; return the markdown."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / "results.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([field.name for field in fields(Result)])
        writer.writerows(astuple(result) for result in results)
    table = markdown(results)
    (output_dir / "results.md").write_text(table + "\n")
    plot(results, output_dir / "results.png")
    if wandb_project is not None:
        log_to_wandb(results, output_dir, wandb_project, wandb_offline)
    return table


def markdown(results: list[Result]) -> str:
    """One table per dataset: a row per checkpoint, a column per protocol; then LogME's ranking."""
    lines = []
    for dataset in _unique(result.dataset for result in results):
        rows = [result for result in results if result.dataset == dataset]
        protocols = _unique(result.protocol for result in rows)
        lines += [f"**{dataset}** (top-1 %; LogME: evidence per example)", ""]
        lines += ["| checkpoint | " + " | ".join(protocols) + " |", "|---|" + "---:|" * len(protocols)]
        for checkpoint in _unique(result.checkpoint for result in rows):
            values = {result.protocol: result.value for result in rows if result.checkpoint == checkpoint}
            cells = [_format(protocol, values.get(protocol)) for protocol in protocols]
            lines.append(f"| {checkpoint} | " + " | ".join(cells) + " |")
        tau = logme_ranking(rows)
        if tau is not None:
            lines += ["", f"LogME ranks the checkpoints against the linear probe with Kendall's tau = {tau:+.2f}."]
        lines.append("")
    return "\n".join(lines).rstrip()


def logme_ranking(rows: list[Result]) -> float | None:
    """Kendall's tau between LogME and linear-probe accuracy over the checkpoints of one dataset."""
    by_checkpoint: dict[str, dict[str, float]] = {}
    for result in rows:
        by_checkpoint.setdefault(result.checkpoint, {})[result.protocol] = result.value
    pairs = [
        (values["logme"], values["linear"]) for values in by_checkpoint.values() if {"logme", "linear"} <= set(values)
    ]
    if len(pairs) < 3:
        return None
    return float(kendalltau(*zip(*pairs)).statistic)


def plot(results: list[Result], path: Path) -> None:
    """Accuracy per protocol and checkpoint (bars), and per layer when the layer-wise probe ran (lines)."""
    datasets = _unique(result.dataset for result in results)
    layerwise = any(result.protocol.startswith("layer") for result in results)
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
            values = [_value(rows, checkpoint, protocol) for checkpoint in checkpoints]
            positions = [index + offset * width for index in range(len(checkpoints))]
            axis.bar(positions, values, width, label=protocol)
        axis.set_xticks([index + 0.4 - width / 2 for index in range(len(checkpoints))])
        axis.set_xticklabels(checkpoints, rotation=30, ha="right", fontsize=8)
        axis.set(title=dataset, ylabel="top-1 (%)")
        axis.legend(fontsize=8, loc="lower left")
        if layerwise:
            axis = axes[1][column]
            for checkpoint in checkpoints:
                layers = sorted(
                    (int(r.protocol[5:]), r.value)
                    for r in rows
                    if r.checkpoint == checkpoint and r.protocol.startswith("layer")
                )
                axis.plot(*zip(*layers), "o-", label=checkpoint)
            axis.set_xticks([stage for stage, _ in layers])
            axis.set(title=f"{dataset}: linear probe per stage", xlabel="stage", ylabel="top-1 (%)")
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def log_to_wandb(results: list[Result], output_dir: Path, project: str, offline: bool) -> None:
    import wandb

    run = wandb.init(project=project, dir=str(output_dir), mode="offline" if offline else "online", job_type="eval")
    table = wandb.Table(columns=[field.name for field in fields(Result)], data=[list(astuple(r)) for r in results])
    run.log({"evaluation/results": table, "evaluation/plot": wandb.Image(str(output_dir / "results.png"))})
    run.finish()


def _value(rows: list[Result], checkpoint: str, protocol: str) -> float:
    return next((r.value for r in rows if r.checkpoint == checkpoint and r.protocol == protocol), float("nan"))


def _format(protocol: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if protocol == "logme" else f"{value:.1f}"


def _unique(items) -> list:
    return list(dict.fromkeys(items))
