"""Integration fixtures: one loaded tiny llama.cpp engine per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.models.files import ModelFiles


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: ModelFiles) -> Iterator[LlamaCppEngine]:
    engine = LlamaCppEngine(tiny_model, n_ctx=1024, n_threads=2)
    engine.load()
    yield engine
    engine.close()
