"""The tiny synthesized pair of every model family, made once per machine into the test cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from gguf import GGUFValueType

from ggufedit import KeyEdit, f16
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


# Broken projector files per family (for the tiny shapes: vision width 64, text width 64).
# The projector's last layer per family, widened by 8 (numpy shapes): its output no longer fits the text model.
WIDENED = {
    "qwen2.5-vl": {"mm.2.weight": f16(72, 256), "mm.2.bias": np.zeros(72, np.float32)},
    "granite-docling": {"mm.model.fc.weight": f16(72, 64 * 16)},
    "gemma-3": {"mm.input_projection.weight": f16(64, 72)},
    "lightonocr": {"mm.2.weight": f16(72, 64)},
}
# A matrix whose inner width does not match what feeds it: a GGML_ASSERT(ggml_can_mul_mat) in the warm-up encode.
INNER = {
    "qwen2.5-vl": ("mm.0.weight", f16(256, 248), "tensor mm.0.weight has shape [248, 256], expected [256, 256]"),
    "granite-docling": ("mm.model.fc.weight", f16(64, 1000), "tensor mm.model.fc.weight has shape [1000, 64]"),
    "gemma-3": ("mm.input_projection.weight", f16(60, 64), "tensor mm.input_projection.weight has shape [64, 60]"),
    "lightonocr": ("mm.patch_merger.weight", f16(64, 128), "tensor mm.patch_merger.weight has shape [128, 64]"),
}
# A key clip.cpp reads with a typed accessor (which aborts on another type), stored as the wrong type.
WRONG_TYPE: dict[str, tuple[str, KeyEdit]] = {
    "qwen2.5-vl": ("clip.vision.n_wa_pattern", (2, GGUFValueType.INT32)),
    "granite-docling": ("clip.vision.projector.scale_factor", (4.0, GGUFValueType.FLOAT32)),
    "gemma-3": ("clip.vision.patch_size", (14, GGUFValueType.INT32)),
    "lightonocr": ("clip.vision.spatial_merge_size", (2, GGUFValueType.INT64)),
}
