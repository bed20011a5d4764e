"""The resolved pair of GGUF files an engine loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Where SageMaker unpacks ``ModelDataUrl``: the model is looked for there when none is named.
SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """A text GGUF and its multimodal projector (``mmproj``) GGUF, plus the id reported in responses."""

    text: Path
    mmproj: Path
    model_id: str
