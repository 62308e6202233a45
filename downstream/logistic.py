"""The ``logistic`` protocol: multinomial logistic regression on frozen features, fitted by L-BFGS.

The linear classifier of SimCLR's transfer experiments (Chen et al. 2020) and of
Kornblith et al. 2019, "Do Better ImageNet Models Transfer Better?": an L2-regularised
softmax regression on features extracted once, without augmentation, minimised
full-batch by L-BFGS (Liu & Nocedal 1989) with a strong Wolfe line search. From a zero
start the fit is a deterministic function of the features and the labels: no learning
rate, epochs or batch order to choose, which suits a few labels per class.
"""

import torch
import torch.nn.functional as F

from downstream.recipes import LogisticRecipe
from downstream.standardize import Standardization


class LogisticRegression:
    def __init__(self, num_classes: int, recipe: LogisticRecipe) -> None:
        self.num_classes = num_classes
        self.recipe = recipe

    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> "LogisticRegression":
        """Minimise cross-entropy + 0.5 x weight_decay x ||W||^2 (the bias is not penalised)."""
        features = features.float()
        dim = features.shape[1]
        self.standardize = Standardization.fit(features) if self.recipe.standardize else Standardization.identity(dim)
        inputs = self.standardize(features)
        self.weight = torch.zeros(self.num_classes, dim, requires_grad=True)
        self.bias = torch.zeros(self.num_classes, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [self.weight, self.bias], max_iter=self.recipe.max_iter, line_search_fn="strong_wolfe"
        )

        def closure():
            optimizer.zero_grad()
            logits = inputs @ self.weight.T + self.bias
            loss = F.cross_entropy(logits, labels) + 0.5 * self.recipe.weight_decay * self.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return self

    @torch.no_grad()
    def losses(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The cross-entropy of every example (no penalty)."""
        logits = self.standardize(features.float()) @ self.weight.T + self.bias
        return F.cross_entropy(logits, labels, reduction="none")

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.standardize(features.float()) @ self.weight.T + self.bias
        return logits.argmax(dim=1)
