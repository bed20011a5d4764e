"""Integration fixtures: one loaded tiny llama.cpp engine per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pagescribe.engine.factory import build_engine
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.engine.options import EngineOptions
from pagescribe.models.files import ModelFiles


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: ModelFiles) -> Iterator[LlamaCppEngine]:
    engine = build_engine(EngineOptions(ctx=1024, threads=2), files=tiny_model)
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server_engine(tiny_model: ModelFiles) -> Iterator[LlamaCppEngine]:
    """A tiny engine of the module's own, for a ``LiveServer``: a server closes its engine when it stops, and the
    session's ``tiny_engine`` must outlive it."""
    engine = build_engine(EngineOptions(ctx=1024, threads=2), files=tiny_model)
    engine.load()
    yield engine
    engine.close()
