"""The tiny synthesized pair of every model family, made once per machine into the test cache."""

from __future__ import annotations

import os
from pathlib import Path

from pagescribe.models.files import ModelFiles

# the same cache as tests/conftest.py's tiny_model
CACHE = Path(os.environ.get("PAGESCRIBE_TEST_CACHE", Path.home() / ".cache" / "pagescribe" / "test-models"))

#: Each family's tiny preset (LLaVA-1.5's is the project's original ``tiny``).
TINY = {
    "llava-1.5": "tiny",
    "qwen2.5-vl": "qwen2.5-vl-tiny",
    "granite-docling": "granite-docling-tiny",
    "gemma-3": "gemma-3-tiny",
    "lightonocr": "lightonocr-tiny",
}
NEW_FAMILIES = [name for name in TINY if name != "llava-1.5"]


def family_model(family: str) -> ModelFiles:
    from pagescribe.models.synth import synthesize

    preset = TINY[family]
    pair = synthesize(preset, CACHE / f"{preset}-seed0", seed=0)
    return ModelFiles(text=pair.text, mmproj=pair.mmproj, model_id=f"pagescribe-{preset}")
