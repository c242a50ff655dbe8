"""Shared data readers and transforms used by every task."""

from .images import ImageDecodeError, load_rgb

__all__ = ["ImageDecodeError", "load_rgb"]
