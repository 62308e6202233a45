"""Distillation losses: a student's embeddings learn a frozen teacher's, one image at a time.

Two ways to compare them, both on L2-normalised rows of ``(N, D)`` student and teacher
embeddings of the same N images (the teacher is detached inside, so only the student learns):

* :func:`feature_regression`, the student regresses the teacher's direction:

      L = mean_i || s_i / |s_i| - t_i / |t_i| ||^2 = mean_i (2 - 2 cos(s_i, t_i))

* :func:`seed_loss`, the relational loss of SEED (Fang et al., "SEED: Self-supervised
  Distillation for Visual Representation", ICLR 2021, eqs. 2-4): the student matches the
  teacher's similarity distribution over a queue of K normalised teacher embeddings d_j and
  the image's own teacher embedding t_i (the keys k of image i are [t_i; d_1 .. d_K]):

      p^T_i(k) = softmax_k(t_i . k / tau_T)        p^S_i(k) = softmax_k(s_i . k / tau_S)
      L = mean_i  - sum_k p^T_i(k) log p^S_i(k)

  For a fixed teacher this is the cross-entropy H(p^T, p^S) >= H(p^T), equal when the
  student's distribution is the teacher's. SEED's public code (github.com/jacobswan1/SEED,
  ``tools/opts.py`` and ``seed/builder.py``) uses tau_S = 0.2 (``--temp``), tau_T = 1e-4
  (``--distill-t``) and K = 65536 (``--queue``); with so cold a teacher p^T is all but
  one-hot on t_i and the loss is InfoNCE with the teacher's embedding as the positive.

Non-finite inputs are not masked: a NaN or infinite entry makes that row, and so the loss,
NaN, which the training shell's non-finite guard then stops at or skips. A zero row has no
direction: it normalises to zero (:func:`~selfsup.losses.nt_xent.unit_rows`), counts as
orthogonal to every other row and keeps the loss finite.
"""

import torch
import torch.nn.functional as F

from selfsup.errors import is_finite
from selfsup.losses.byol import normalized_mse
from selfsup.losses.nt_xent import unit_rows


def feature_regression(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """The mean over rows of ``|| s/|s| - t/|t| ||^2 = 2 - 2 cos(s, t)``, in [0, 4]; ``teacher`` is detached.

    Args:
        student: ``(N, D)``, the student's embeddings (its projector's output).
        teacher: ``(N, D)``, the teacher's features of the same images.
    """
    _require_pairs(student, teacher)
    return normalized_mse(student, teacher)


def seed_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    queue: torch.Tensor,
    student_temperature: float = 0.2,
    teacher_temperature: float = 1e-4,
) -> torch.Tensor:
    """SEED's cross-entropy between the teacher's and the student's similarity distributions (eq. 4).

    Computed in float32 with autocast off (at tau_T = 1e-4 a half-precision cosine's rounding
    would move a logit by tens), through ``log_softmax``, so any temperature stays finite.

    Args:
        student: ``(N, D)``, the student's embeddings; normalised here.
        teacher: ``(N, D)``, the teacher's embeddings of the same images; normalised and detached here.
        queue: ``(K, D)``, unit-norm teacher embeddings of earlier images; detached here.
        student_temperature: tau_S > 0.
        teacher_temperature: tau_T > 0.
    """
    _require_pairs(student, teacher)
    if queue.ndim != 2 or queue.shape[1] != student.shape[1]:
        raise ValueError(f"the queue {tuple(queue.shape)} must be (K, {student.shape[1]}), the embeddings' width")
    for name, value in (("student", student_temperature), ("teacher", teacher_temperature)):
        if not (is_finite(value) and value > 0):
            raise ValueError(f"the {name} temperature must be a finite number > 0, got {value!r}")
    with torch.autocast(device_type=student.device.type, enabled=False):
        student, teacher, queue = unit_rows(student), unit_rows(teacher.detach()), queue.detach().float()
        teacher_logits = torch.cat([(teacher * teacher).sum(dim=1, keepdim=True), teacher @ queue.T], dim=1)
        student_logits = torch.cat([(student * teacher).sum(dim=1, keepdim=True), student @ queue.T], dim=1)
        targets = F.softmax(teacher_logits / teacher_temperature, dim=1)
        log_predictions = F.log_softmax(student_logits / student_temperature, dim=1)
        return -(targets * log_predictions).sum(dim=1).mean()


def _require_pairs(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.ndim != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} embeddings must both be (N, D): "
            "project the student to the teacher's width"
        )
