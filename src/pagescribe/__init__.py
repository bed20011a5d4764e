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

# heavier entry points load on first use, so `import pagescribe` stays cheap
_LAZY = {
    "Client": "pagescribe.client",
    "AsyncClient": "pagescribe.client",
    "convert": "pagescribe.pipeline",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pagescribe' has no attribute {name!r}")

__all__ = [
    "AsyncClient",
    "Client",
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
    "convert",
]
