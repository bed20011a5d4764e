"""The one way to make the in-process engine: ``EngineOptions`` in, a llama.cpp engine out."""

from __future__ import annotations

from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.models.files import ModelFiles


def build_engine(options: EngineOptions | None = None, *, files: ModelFiles | None = None) -> LlamaCppEngine:
    """The engine for ``options`` (default: from the environment), not loaded yet: nothing is read or downloaded
    until ``load``. ``files`` skips finding the model (tests, and callers that resolved it already)."""
    return LlamaCppEngine(options or EngineOptions(), files=files)


def load_engine(options: EngineOptions | None = None, *, files: ModelFiles | None = None) -> LlamaCppEngine:
    """``build_engine``, then ``load`` (blocking); raises ``ModelError`` with the reason when it cannot."""
    engine = build_engine(options, files=files)
    engine.load()
    return engine
