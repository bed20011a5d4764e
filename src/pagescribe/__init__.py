"""pagescribe: turn document pages into faithful text with a self-hosted vision LLM."""

from pagescribe.errors import PagescribeError
from pagescribe.types import (
    GenerationRequest,
    GenerationResult,
    ImageInput,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
    Timings,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "ImageInput",
    "ImagePart",
    "Message",
    "PagescribeError",
    "SamplingParams",
    "TextPart",
    "Timings",
    "Usage",
    "__version__",
]
