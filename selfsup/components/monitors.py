"""Online monitors: how good the representation is while it is being learnt, without training it.

* :class:`OnlineLinearProbe`: a linear classifier trained beside the method on detached
  features (solo-learn's online classifier); unlabelled images (label -1) are ignored.
* :class:`KNNMonitor`: weighted kNN (Wu et al. 2018) of validation queries against a
  bank of labelled training features.
* :class:`ValidationFeatures`: the features of the named validation loaders, gathered
  from every rank with each sample counted once, so that both monitors read the same
  on one device or many.

Both monitors report NaN, with a warning, when a feature is NaN or infinite (a
diverged backbone): a NaN row must neither crash training nor count as a vote.
"""

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from selfsup.evaluation import gather_unique, weighted_knn_predict
from selfsup.evaluation.knn import non_finite_rows


def _non_finite(monitor: str, **features: torch.Tensor) -> bool:
    """Warn and return True if any of the named feature tensors has a NaN or infinite row."""
    counts = {name: non_finite_rows(value) for name, value in features.items()}
    if not any(counts.values()):
        return False
    rows = " and ".join(f"{counts[name]} of {len(value)} {name} rows" for name, value in features.items())
    rank_zero_warn(f"{monitor}: {rows} are NaN or infinite (the backbone has diverged); reporting NaN accuracy.")
    return True


class OnlineLinearProbe(nn.Linear):
    def loss_and_accuracy(self, features: torch.Tensor, labels: torch.Tensor):
        """Cross-entropy and accuracy on the labelled rows of detached ``features``; ``None`` if none is."""
        labelled = labels >= 0
        if not labelled.any():
            return None
        logits = self(features.detach()[labelled])
        targets = labels[labelled]
        return F.cross_entropy(logits, targets), (logits.argmax(dim=1) == targets).float().mean()

    @torch.no_grad()
    def accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Top-1 on ``features``; NaN, with a warning, if any of them is NaN or infinite."""
        if _non_finite("online linear probe", query=features):
            return torch.full((), float("nan"), device=features.device)
        return (self(features).argmax(dim=1) == labels).float().mean()


class KNNMonitor:
    def __init__(self, num_classes: int, k: int = 20, temperature: float = 0.07) -> None:
        self.num_classes, self.k, self.temperature = num_classes, k, temperature

    def accuracy(self, bank: tuple[torch.Tensor, torch.Tensor], queries: tuple[torch.Tensor, torch.Tensor]):
        """Top-1 of the queries ``(features, labels)`` classified by the bank ``(features, labels)``.

        NaN, with a warning, if any bank or query feature is NaN or infinite.
        """
        if _non_finite("kNN monitor", bank=bank[0], query=queries[0]):
            return torch.full((), float("nan"), device=queries[0].device)
        predicted = weighted_knn_predict(*bank, queries[0], self.num_classes, self.k, self.temperature)
        return (predicted == queries[1]).float().mean()


class ValidationFeatures:
    """``(features, labels, indices)`` batches per loader name, gathered across ranks on demand."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.reset()

    def reset(self) -> None:
        self._batches: dict[str, list] = {name: [] for name in self.names}

    def add(self, name: str, features: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        self._batches[name].append((features.detach(), labels, indices))

    def complete(self) -> bool:
        return all(self._batches.values())

    def gathered(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every rank's ``(features, labels)`` of loader ``name``, one row per sample, in index order."""
        return gather_unique(*map(torch.cat, zip(*self._batches[name])))
