"""The files validation stops would have crashed llama.cpp: each family's broken mmproj, loaded in a child process,
aborts the process (SIGABRT) there, and is a one-line ModelInvalid here before llama.cpp sees it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from gguf import GGUFReader
from test_models_llamacpp import load_in_child

from familymodels import INNER, NEW_FAMILIES, WRONG_TYPE, family_model
from ggufedit import rewrite_gguf
from pagescribe.errors import ModelInvalid
from pagescribe.models.validate import validate_pair

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("family", NEW_FAMILIES)
@pytest.mark.parametrize("fault", ["inner width", "key type"])
def test_an_mmproj_that_aborts_llama_cpp_is_stopped_first(family: str, fault: str, tmp_path: Path) -> None:
    files = family_model(family)
    if fault == "inner width":
        name, array, _ = INNER[family]
        edits: dict[str, object] = {"tensors": {name: array}}
    else:
        key, edit = WRONG_TYPE[family]
        edits = {"keys": {key: edit}}
    bad = rewrite_gguf(GGUFReader(files.mmproj), tmp_path / "mmproj.gguf", **edits)  # type: ignore[arg-type]
    crashed = load_in_child(files.text, bad)
    assert crashed.returncode == -signal.SIGABRT, crashed.stderr[-2000:]
    with pytest.raises(ModelInvalid, match=str(bad)) as caught:
        validate_pair(files.text, bad)
    assert "\n" not in str(caught.value)
