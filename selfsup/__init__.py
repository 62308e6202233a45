"""selfsup: self-supervised pretraining of vision backbones."""

from selfsup.errors import ConfigurationError

__all__ = ["ConfigurationError"]
__version__ = "0.1.0"
