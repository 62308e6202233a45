"""Evaluation functions shared by the online monitors and the downstream suite."""

from selfsup.evaluation.gather import gather_unique
from selfsup.evaluation.knn import weighted_knn_predict

__all__ = ["gather_unique", "weighted_knn_predict"]
