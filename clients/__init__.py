"""Clients of VideoEditService: the Python library (`VideoEditClient`) and the `videoedit` CLI."""

from .client import VideoEditClient

__all__ = ["VideoEditClient"]
