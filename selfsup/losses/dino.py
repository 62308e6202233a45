"""DINO's self-distillation loss: the student's crops predict the centred, sharpened teacher's.

Caron et al. 2021, §3.1, eq. (2)-(3) and Algorithm 1. For the teacher's outputs t of the
global crops and the student's outputs s of every crop:

    P_t = softmax((t - C) / tau_t)            centred and sharpened (tau_t 0.04 -> 0.07)
    P_s = softmax(s / tau_s)                  tau_s = 0.1
    loss = mean over pairs (global crop g, crop v != g) of  mean over images of  -P_t(g) . log P_s(v)
    C <- m C + (1 - m) mean of t over the global crops of the whole global batch     m = 0.9

The centre is a persistent buffer (saved in checkpoints) and its batch mean is all-reduced
across ranks, so every rank holds the centre of the whole global batch. The teacher's
outputs carry no gradient. For a fixed teacher distribution the loss of one pair is at
least that distribution's entropy, reached when the student's distribution equals it.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import is_distributed, world_size
from selfsup.errors import ConfigurationError, is_finite


class DINOLoss(nn.Module):
    def __init__(self, output_dim: int, student_temperature: float = 0.1, center_momentum: float = 0.9) -> None:
        super().__init__()
        if not (is_finite(student_temperature) and student_temperature > 0):
            raise ConfigurationError(
                f"DINO's student temperature must be a finite number > 0, got {student_temperature!r} (the paper: 0.1)."
            )
        if not (is_finite(center_momentum) and 0 <= center_momentum < 1):
            raise ConfigurationError(f"DINO's centre momentum must be in [0, 1), got {center_momentum!r} (0.9).")
        self.student_temperature = float(student_temperature)
        self.center_momentum = float(center_momentum)
        self.register_buffer("center", torch.zeros(1, output_dim))

    def forward(
        self, student_outputs: list[torch.Tensor], teacher_outputs: list[torch.Tensor], teacher_temperature: float
    ) -> torch.Tensor:
        """The loss over every (teacher global crop, other student crop) pair; crop g of both lists is the same view.

        Args:
            student_outputs: ``(B, K)`` logits per crop, the global crops first.
            teacher_outputs: ``(B, K)`` logits per global crop.
            teacher_temperature: tau_t at this epoch.
        """
        with torch.autocast(device_type=self.center.device.type, enabled=False):
            targets = [
                F.softmax((t.detach().float() - self.center) / teacher_temperature, dim=-1) for t in teacher_outputs
            ]
            log_predictions = [F.log_softmax(s.float() / self.student_temperature, dim=-1) for s in student_outputs]
            total, pairs = 0.0, 0
            for g, target in enumerate(targets):
                for v, log_prediction in enumerate(log_predictions):
                    if v == g:
                        continue
                    total = total + (-target * log_prediction).sum(dim=-1).mean()
                    pairs += 1
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher_outputs: list[torch.Tensor]) -> None:
        """C <- m C + (1 - m) (the mean teacher output over every global crop of every rank)."""
        outputs = torch.cat(teacher_outputs).float()
        total = outputs.sum(dim=0, keepdim=True)
        if is_distributed():
            dist.all_reduce(total)
        batch_center = total / (len(outputs) * world_size())
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
