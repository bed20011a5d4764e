"""Shared fixtures: the tiny random-weight model pair (made once per machine into a cache directory), a moto server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pagescribe.models.files import ModelFiles

CACHE = Path(os.environ.get("PAGESCRIBE_TEST_CACHE", Path.home() / ".cache" / "pagescribe" / "test-models"))


@pytest.fixture(scope="session")
def tiny_model() -> ModelFiles:
    """The `tiny` preset, seed 0: a real LLaVA-1.5-architecture pair of a few MB (random weights)."""
    from pagescribe.models.synth import synthesize

    pair = synthesize("tiny", CACHE / "tiny-seed0", seed=0)
    return ModelFiles(text=pair.text, mmproj=pair.mmproj, model_id="pagescribe-tiny")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session; tests that use it reset it afterwards (``servers.use_moto``)."""
    from servers import moto_server

    with moto_server() as url:
        yield url
