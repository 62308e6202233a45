"""selfsup: self-supervised pretraining of vision backbones.

Docstrings cite each method's paper and, where the book states the objective, "the
textbook": Matsui & Kumagai, *Transfer Learning* (転移学習, Machine Learning
Professional Series, Kodansha), chapter 6, by section and equation number.
"""

from selfsup.errors import ConfigurationError

__all__ = ["ConfigurationError"]
__version__ = "0.1.0"
