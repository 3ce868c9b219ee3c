"""Edit-quality metrics that need no model weights (`videoedit eval`)."""

from .metrics import EditQuality, evaluate

__all__ = ["EditQuality", "evaluate"]
