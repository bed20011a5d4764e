"""Engines answer GenerationRequests. ``base`` holds the protocol; each backend lives in its own module."""

from pagescribe.engine.base import CancelToken, Engine, collect

__all__ = ["CancelToken", "Engine", "collect"]
