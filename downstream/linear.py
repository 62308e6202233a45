"""Linear probe on cached features: multinomial logistic regression.

Features are standardised with the training set's mean and deviation, and the
classifier is fitted full-batch by L-BFGS from a zero start, so the result is a
deterministic function of the features and the labels.
"""

import torch
import torch.nn.functional as F


class LinearProbe:
    def __init__(self, num_classes: int, weight_decay: float = 1e-3, max_iter: int = 300) -> None:
        self.num_classes = num_classes
        self.weight_decay = weight_decay
        self.max_iter = max_iter

    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> "LinearProbe":
        features = features.float()
        self.mean = features.mean(dim=0)
        self.scale = features.std(dim=0).clamp_min(1e-6)
        inputs = (features - self.mean) / self.scale
        self.weight = torch.zeros(self.num_classes, inputs.shape[1], requires_grad=True)
        self.bias = torch.zeros(self.num_classes, requires_grad=True)
        optimizer = torch.optim.LBFGS([self.weight, self.bias], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            logits = inputs @ self.weight.T + self.bias
            loss = F.cross_entropy(logits, labels) + 0.5 * self.weight_decay * self.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return self

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        logits = ((features.float() - self.mean) / self.scale) @ self.weight.T + self.bias
        return logits.argmax(dim=1)
