"""The report's transferability section: scores, how far to trust each ranking, the answer, the affinity.

For one dataset of the matrix, from its :class:`~downstream.report.Result` rows:

1. the scores of every checkpoint (a row each; its best layer by ``rank_by`` when layers were scored);
2. each score's agreement with the accuracies after training (fine-tuning and linear probe,
   else logistic or kNN): Kendall's tau and weighted tau with their bootstrap intervals
   (:mod:`downstream.transferability.agreement`), the seconds each score took, its failures;
3. the answer to "which checkpoint?": the checkpoints ranked by ``rank_by``, beside their
   rank after training where it ran;
4. a one-paragraph "which score to trust here";
5. Taskonomy's affinity of the checkpoints as sources (:mod:`downstream.transferability.affinity`)
   from the per-example test losses of each trained protocol.

:func:`plot_scores` draws every score against the reference accuracy, a point per checkpoint.
"""

import io
import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from downstream.recipes import TransferabilityRecipe  # noqa: E402
from downstream.transferability.affinity import affinity_ranking  # noqa: E402
from downstream.transferability.agreement import agreement  # noqa: E402
from downstream.value_names import TRAINED_PROTOCOLS, layer_of, score_name, scored, seconds_name  # noqa: E402

#: The accuracies a score's ranking is judged against, in order of preference.
REFERENCES = ("finetune", "linear", "logistic", "knn")


def references(rows) -> list[str]:
    """Fine-tuning and the linear probe where they ran; else the first of logistic and kNN that did."""
    present = [protocol for protocol in REFERENCES if any(r.protocol == protocol for r in rows)]
    preferred = [protocol for protocol in present if protocol in ("finetune", "linear")]
    return preferred or present[:1]


def transferability_section(rows, losses: dict, scoring: TransferabilityRecipe) -> list[str]:
    """The markdown lines of one dataset's section (none when no score ran)."""
    scores = list(dict.fromkeys(name for r in rows if (name := scored(r.protocol)) is not None))
    if not scores:
        return []
    checkpoints = list(dict.fromkeys(r.checkpoint for r in rows))
    values = _per_seed(rows)
    best_layers = _best_layers(rows, scoring.rank_by) if scoring.layers else {}
    lines = ["Transferability scores (higher = predicted to transfer better; no training):", ""]
    heading = ["checkpoint", *scores] + ([f"best layer by {scoring.rank_by}"] if best_layers else [])
    lines += ["| " + " | ".join(heading) + " |", "|---|" + "---:|" * (len(heading) - 1)]
    for checkpoint in checkpoints:
        cells = [_mean_text(values.get((checkpoint, score_name(score)), [])) for score in scores]
        if best_layers:
            cells.append(best_layers.get(checkpoint, ""))
        lines.append(f"| {checkpoint} | " + " | ".join(cells) + " |")
    judged = references(rows)
    agreements = {}
    for score in scores:
        for reference in judged:
            both = [c for c in checkpoints if (c, reference) in values and (c, score_name(score)) in values]
            agreements[(score, reference)] = agreement(
                [values[(c, score_name(score))] for c in both],
                [values[(c, reference)] for c in both],
                resamples=scoring.bootstrap,
            )
    lines += ["", *_agreement_table(scores, judged, agreements, values, checkpoints)]
    lines += ["", *_ranking(checkpoints, values, scoring.rank_by, judged[:1], best_layers)]
    lines += ["", _trust_summary(scores, judged, agreements, values, checkpoints)]
    lines += ["", *_affinity_table(rows, losses)]
    return lines


def _agreement_table(scores, judged, agreements, values, checkpoints) -> list[str]:
    spread = "95% bootstrap intervals over the checkpoints and seeds"
    lines = [f"How each score ranks the checkpoints against training (Kendall's tau, weighted tau; {spread}):", ""]
    heading = ["score", *(f"tau vs {r}" for r in judged), *(f"weighted tau vs {r}" for r in judged)]
    heading += ["seconds per cell", "failed cells"]
    lines += ["| " + " | ".join(heading) + " |", "|---|" + "---:|" * (len(heading) - 1)]
    for score in scores:
        taus = [_with_interval(agreements[(score, r)].tau, agreements[(score, r)].tau_interval) for r in judged]
        weighted = [
            _with_interval(agreements[(score, r)].weighted_tau, agreements[(score, r)].weighted_interval)
            for r in judged
        ]
        seconds = [s for c in checkpoints for s in values.get((c, seconds_name(score)), [])]
        cost = f"{statistics.mean(seconds):.3f}" if seconds else ""
        computed = [v for c in checkpoints for v in values.get((c, score_name(score)), [])]
        failed = sum(math.isnan(v) for v in computed)
        lines.append(f"| {score} | " + " | ".join([*taus, *weighted, cost, f"{failed} of {len(computed)}"]) + " |")
    return lines


def _ranking(checkpoints, values, rank_by: str, judged, best_layers) -> list[str]:
    """The checkpoints by ``rank_by`` without training, beside their rank after training."""
    means = {c: _mean(values.get((c, score_name(rank_by)), [])) for c in checkpoints}
    order = sorted((c for c in checkpoints if not math.isnan(means[c])), key=lambda c: -means[c])
    reference = judged[0] if judged else None
    trained = {c: _mean(values[(c, reference)]) for c in checkpoints if (c, reference) in values}
    trained_order = sorted(trained, key=lambda c: -trained[c])
    lines = [f"Which checkpoint? Ranked by {rank_by} without training" + (f", beside {reference}:" if trained else ":")]
    lines += [""]
    for place, checkpoint in enumerate(order, start=1):
        layer = f", best layer {best_layers[checkpoint]}" if checkpoint in best_layers else ""
        after = ""
        if checkpoint in trained:
            after = f"; {trained[checkpoint]:.1f}% after training, rank {trained_order.index(checkpoint) + 1}"
        lines.append(f"{place}. {checkpoint} ({rank_by} {means[checkpoint]:.3f}{layer}{after})")
    return lines


def _trust_summary(scores, judged, agreements, values, checkpoints) -> str:
    """Which score ranked these checkpoints like training did, which did no better than chance, which failed."""
    if not judged:
        return "Which score to trust here: no trained protocol ran, so no score could be checked against training."
    reference = judged[0]
    checked = {score: agreements[(score, reference)] for score in scores}
    rated = [score for score in scores if not math.isnan(checked[score].tau)]
    failed = [
        score
        for score in scores
        if any(math.isnan(v) for c in checkpoints for v in values.get((c, score_name(score)), []))
    ]
    failures = f" Failed on some checkpoints (NaN, reason on stderr): {', '.join(failed)}." if failed else ""
    if not rated:
        return (
            f"Which score to trust here: no score could be ranked against {reference} "
            f"(fewer than 3 checkpoints with both, or a constant score).{failures}"
        )
    intervals = not math.isnan(checked[rated[0]].tau_interval[0])
    lower = (lambda score: checked[score].tau_interval[0]) if intervals else (lambda score: checked[score].tau)
    best = max(rated, key=lambda score: (lower(score), checked[score].tau))
    parts = [
        f"Which score to trust here: against {reference}, {best} ranked the {checked[best].checkpoints} "
        f"checkpoints best (tau {_with_interval(checked[best].tau, checked[best].tau_interval)})."
    ]
    if intervals:
        chance = [score for score in rated if not checked[score].interval_excludes_zero()]
        if chance:
            parts.append(f"No better than chance here (interval holds 0): {', '.join(chance)}.")
        inverted = [score for score in rated if checked[score].tau_interval[1] < 0]
        if inverted:
            parts.append(f"Ranked against training: {', '.join(inverted)}.")
    else:
        parts.append("No intervals (transferability.bootstrap: 0): how far to trust it is not measured.")
    if failures:
        parts.append(failures.strip())
    if checked[best].checkpoints < 8:
        parts.append(
            f"With {checked[best].checkpoints} checkpoints one swapped pair moves tau by a lot: read the intervals."
        )
    return " ".join(parts)


def _affinity_table(rows, losses: dict) -> list[str]:
    """Taskonomy's affinity (eq. 6.15) of the checkpoints as sources, per trained protocol."""
    columns, left_out = {}, []
    dataset = rows[0].dataset if rows else None
    seeds = list(dict.fromkeys(r.seed for r in rows))
    for protocol in TRAINED_PROTOCOLS:
        per_checkpoint = {}
        for checkpoint in dict.fromkeys(r.checkpoint for r in rows):
            per_seed = [losses[key] for seed in seeds if (key := (checkpoint, dataset, protocol, seed)) in losses]
            if not per_seed or len({len(s) for s in per_seed}) != 1:
                continue
            mean = np.mean(np.array(per_seed, dtype=np.float64), axis=0)
            if np.isfinite(mean).all():
                per_checkpoint[checkpoint] = mean
            else:  # a diverged classifier: its losses cannot be compared
                left_out.append(f"{checkpoint} ({protocol})")
        if len(per_checkpoint) >= 2 and len({len(v) for v in per_checkpoint.values()}) == 1:
            ranking = affinity_ranking(np.stack(list(per_checkpoint.values())))
            columns[protocol] = dict(zip(per_checkpoint, ranking))
    if not columns:
        return []
    lines = [
        "Taskonomy affinity of the checkpoints as sources (textbook eq. 6.15): the principal eigenvector of the "
        "pairwise win rates of their per-example test losses, summing to 1 (higher = better source):",
        "",
        "| checkpoint | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for checkpoint in dict.fromkeys(r.checkpoint for r in rows):
        cells = [f"{column[checkpoint]:.3f}" if checkpoint in column else "" for column in columns.values()]
        lines.append(f"| {checkpoint} | " + " | ".join(cells) + " |")
    if left_out:
        lines += ["", f"Left out, their test losses not finite: {', '.join(left_out)}."]
    lines.append("")
    return lines


def plot_scores(results, path: Path | io.BytesIO) -> bool:
    """Each score against the reference accuracy (a point per checkpoint, a row per dataset); False if none."""
    datasets = list(dict.fromkeys(r.dataset for r in results))
    panels = []
    for dataset in datasets:
        rows = [r for r in results if r.dataset == dataset]
        judged = references(rows)
        scores = list(dict.fromkeys(name for r in rows if (name := scored(r.protocol)) is not None))
        if judged and scores:
            panels.append((dataset, rows, judged[0], scores))
    if not panels:
        return False
    width = max(len(scores) for *_, scores in panels)
    figure, axes = plt.subplots(len(panels), width, figsize=(2.6 * width, 2.6 * len(panels)), squeeze=False)
    for line, (dataset, rows, reference, scores) in enumerate(panels):
        values = _per_seed(rows)
        checkpoints = [c for c in dict.fromkeys(r.checkpoint for r in rows) if (c, reference) in values]
        for column in range(width):
            axis = axes[line][column]
            if column >= len(scores):
                axis.axis("off")
                continue
            score = scores[column]
            x = [_mean(values.get((c, score_name(score)), [])) for c in checkpoints]
            y = [_mean(values[(c, reference)]) for c in checkpoints]
            axis.scatter(x, y, s=18)
            for label, px, py in zip(checkpoints, x, y):
                axis.annotate(label[:18], (px, py), fontsize=6, xytext=(2, 2), textcoords="offset points")
            tau = agreement([[v] for v in x], [[v] for v in y], resamples=0).tau
            axis.set_title(f"{dataset}: {score} (tau {tau:+.2f})", fontsize=8)
            axis.tick_params(labelsize=6)
            if column == 0:
                axis.set_ylabel(f"{reference} top-1 (%)", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
    return True


def _best_layers(rows, rank_by: str) -> dict[str, str]:
    """checkpoint -> its stage with the highest mean ``rank_by`` (the last stage is the backbone's features)."""
    stage_values: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        found = layer_of(r.protocol)
        if found and found[0] == rank_by:
            stage_values.setdefault(r.checkpoint, {}).setdefault(found[1], []).append(r.value)
    best = {}
    for checkpoint, stages in stage_values.items():
        final = [r.value for r in rows if r.checkpoint == checkpoint and r.protocol == score_name(rank_by)]
        means = {stage: _mean(v) for stage, v in stages.items()}
        means[max(stages) + 1] = _mean(final)
        finite = {stage: mean for stage, mean in means.items() if not math.isnan(mean)}
        if finite:
            best[checkpoint] = str(max(finite, key=finite.get))
    return best


def _per_seed(rows) -> dict[tuple[str, str], list[float]]:
    values: dict[tuple[str, str], list[float]] = {}
    for r in sorted(rows, key=lambda r: r.seed):
        values.setdefault((r.checkpoint, r.protocol), []).append(r.value)
    return values


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.mean(finite) if finite else float("nan")


def _mean_text(values: list[float]) -> str:
    if not values:
        return ""
    mean = _mean(values)
    if math.isnan(mean):
        return "failed"
    finite = [v for v in values if not math.isnan(v)]
    return f"{mean:.3f} ± {statistics.stdev(finite):.3f}" if len(finite) > 1 else f"{mean:.3f}"


def _with_interval(value: float, interval: tuple[float, float]) -> str:
    if math.isnan(value):
        return "–"
    if math.isnan(interval[0]):
        return f"{value:+.2f}"
    return f"{value:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"
