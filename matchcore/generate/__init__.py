"""Synthetic matchcore data sets with ground truth (see datasets/README.md)."""

from .core import FORMATS, GeneratedData, generate

__all__ = ["FORMATS", "GeneratedData", "generate"]
