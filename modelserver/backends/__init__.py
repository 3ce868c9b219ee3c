"""Model backends: the Segmenter/Editor contracts (base) and their SAM3 and InstructPix2Pix
implementations, plus builders of tiny and full-size random-weight models."""

from .base import Editor, Instance, PromptKind, Segmenter

__all__ = ["Editor", "Instance", "PromptKind", "Segmenter"]
