"""The named shapes ``pagescribe model synth --preset NAME`` writes, and the tensor layout they imply.

A *preset* fixes the text model and the vision tower plus projector of one model family. ``tiny`` presets are a
few MB for tests; the others have the real shapes and quantization layout of the published files, for
benchmarks. From a preset the functions here derive the exact tensor plan — names, numpy shapes, ggml types,
sizes — without touching any data, so tests can check a 4 GB layout in milliseconds.

Shapes are numpy order (slowest dimension first); ggml's ``ne`` order is the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pagescribe.models.plans import mmproj_tensor_plan, text_tensor_plan
from pagescribe.models.shapes import (
    F16,
    F32,
    Q4_K,
    Q6_K,
    Q8_0,
    Init,
    PairPlan,
    TensorSpec,
    TextFileType,
    TextShape,
    VisionShape,
)

__all__ = [
    "F16", "F32", "PRESETS", "Q4_K", "Q6_K", "Q8_0", "Init", "PairPlan", "Preset", "TensorSpec", "TextFileType",
    "TextShape", "VisionShape", "get_preset", "mmproj_tensor_plan", "tensor_plan", "text_tensor_plan",
]


@dataclass(frozen=True, slots=True)
class Preset:
    """A named pair of shapes of one model family: what ``pagescribe model synth --preset NAME`` writes."""

    name: str
    text: TextShape
    vision: VisionShape
    family: str = "llava-1.5"

    @property
    def text_filename(self) -> str:
        return f"pagescribe-{self.name}-{self.text.file_type}.gguf"

    @property
    def mmproj_filename(self) -> str:
        return f"mmproj-pagescribe-{self.name}-f16.gguf"


# CLIP ViT-L/14 at 336 px as stored in LLaVA-1.5 mmproj files: 23 of the 24 blocks (the converter drops the
# last one because LLaVA takes features from the second-to-last layer).
_VIT_L_336 = VisionShape(
    image_size=336,
    patch_size=14,
    n_embd=1024,
    n_ff=4096,
    n_head=16,
    n_layer=23,
    projection_dim=768,
    init_std=0.02,
)

_SIGLIP_HALF = (0.5, 0.5, 0.5)


def _tiny_text(arch: str, *, init_std: float = 0.3, **extra: object) -> TextShape:
    # GQA, and for qwen3 / gemma3 heads wider than n_embd / n_head, as in the real models
    return TextShape(n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=128, file_type="F16", tied_output=True,
                     init_std=init_std, n_vocab=8192, arch=arch, **extra)  # type: ignore[arg-type]


def _tiny_vision(projector: str, *, init_std: float = 0.3, **extra: object) -> VisionShape:
    return VisionShape(n_embd=64, n_ff=128, n_head=4, n_layer=2, projection_dim=64, init_std=init_std,
                       projector=projector, **extra)  # type: ignore[arg-type]


_FAMILY_TINY = (
    # 56 px at 14 px patches, merged 2x2 (a page of 1344 px gives the 48 x 37 grid of the real model's tokens)
    Preset("qwen2.5-vl-tiny", _tiny_text("qwen2vl", rope_sections=(2, 3, 3, 0), rope_freq_base=1e6, norm_eps=1e-6),
           _tiny_vision("qwen2.5vl_merger", image_size=56, patch_size=14, merge=2, n_wa_pattern=2, eps=1e-6),
           family="qwen2.5-vl"),
    # 64 px tiles of 8 px patches, pixel shuffle 4: 4 tokens a tile; pages resized to 128 px: 2 x 2 tiles + overview
    Preset("granite-docling-tiny", _tiny_text("llama", rope_freq_base=1e5),
           _tiny_vision("idefics3", image_size=64, patch_size=8, merge=4, preproc_image_size=128, eps=1e-6,
                        image_mean=_SIGLIP_HALF, image_std=_SIGLIP_HALF),
           family="granite-docling"),
    # 224 px at 14 px patches, pooled 4x4: 16 tokens an image; a local window wider than the tests' prompts.
    # std 0.05: Gemma scales embeddings by sqrt(n_embd), and at 0.3 the answer no longer depends on the image.
    Preset("gemma-3-tiny", _tiny_text("gemma3", init_std=0.05, head_dim_override=32, rope_freq_base=1e6,
                                      norm_eps=1e-6, sliding_window=256, rope_scaling_factor=8.0),
           _tiny_vision("gemma3", init_std=0.05, image_size=224, patch_size=14, merge=4, eps=1e-6,
                        image_mean=_SIGLIP_HALF, image_std=_SIGLIP_HALF),
           family="gemma-3"),
    # longest edge 112 px at 14 px patches, merged 2x2: 16 tokens for a page
    Preset("lightonocr-tiny", _tiny_text("qwen3", head_dim_override=32, rope_freq_base=1e6, norm_eps=1e-6),
           _tiny_vision("lightonocr", image_size=112, patch_size=14, merge=2),
           family="lightonocr"),
)

_FAMILY_FULL = (
    # Qwen2.5-VL-3B-Instruct (config.json): text 2048 x 36 layers, 16/2 heads, tied embeddings, M-RoPE sections
    # 16/24/24; vision 1280 x 32 blocks, window attention with full attention every 8th block.
    Preset("qwen2.5-vl-3b",
           TextShape(n_embd=2048, n_layer=36, n_head=16, n_head_kv=2, n_ff=11008, file_type="Q4_K_M",
                     tied_output=True, init_std=0.02, n_vocab=151936, context_length=128000, arch="qwen2vl",
                     rope_freq_base=1e6, norm_eps=1e-6, rope_sections=(16, 24, 24, 0)),
           VisionShape(image_size=560, patch_size=14, n_embd=1280, n_ff=3420, n_head=16, n_layer=32,
                       projection_dim=2048, init_std=0.02, projector="qwen2.5vl_merger", merge=2, n_wa_pattern=8,
                       eps=1e-6),
           family="qwen2.5-vl"),
    # granite-docling-258M: a Granite 165M (llama) text model, 576 x 30 layers, 9/3 heads, vocab 100352; SigLIP2
    # base patch16 at 512 px, pixel shuffle 4 (64 tokens a tile), pages resized to 2048 px. Published as Q8_0.
    Preset("granite-docling-258m",
           TextShape(n_embd=576, n_layer=30, n_head=9, n_head_kv=3, n_ff=1536, file_type="Q8_0", tied_output=True,
                     init_std=0.02, n_vocab=100352, context_length=8192, rope_freq_base=1e5),
           VisionShape(image_size=512, patch_size=16, n_embd=768, n_ff=3072, n_head=12, n_layer=12,
                       projection_dim=576, init_std=0.02, projector="idefics3", merge=4, preproc_image_size=2048,
                       eps=1e-6, image_mean=_SIGLIP_HALF, image_std=_SIGLIP_HALF),
           family="granite-docling"),
    # gemma-3-4b-it: text 2560 x 34 layers, 8/4 heads of 256, sliding window 1024 on 5 of every 6 layers, tied;
    # SigLIP so400m at 896 px, 4x4 pooling to 256 tokens.
    Preset("gemma-3-4b",
           TextShape(n_embd=2560, n_layer=34, n_head=8, n_head_kv=4, n_ff=10240, file_type="Q4_K_M",
                     tied_output=True, init_std=0.02, n_vocab=262208, context_length=131072, arch="gemma3",
                     head_dim_override=256, rope_freq_base=1e6, norm_eps=1e-6, sliding_window=1024,
                     rope_scaling_factor=8.0),
           VisionShape(image_size=896, patch_size=14, n_embd=1152, n_ff=4304, n_head=16, n_layer=27,
                       projection_dim=2560, init_std=0.02, projector="gemma3", merge=4, eps=1e-6,
                       image_mean=_SIGLIP_HALF, image_std=_SIGLIP_HALF),
           family="gemma-3"),
    # LightOnOCR-1B-1025: a Qwen3 text model 1024 x 28 layers, 16/8 heads of 128; a Pixtral tower 1024 x 24
    # blocks at a longest edge of 1540 px, patch merger 2x2. Published as Q8_0.
    Preset("lightonocr-1b",
           TextShape(n_embd=1024, n_layer=28, n_head=16, n_head_kv=8, n_ff=3072, file_type="Q8_0", tied_output=True,
                     init_std=0.02, n_vocab=151936, context_length=40960, arch="qwen3", head_dim_override=128,
                     rope_freq_base=1e6, norm_eps=1e-6),
           VisionShape(image_size=1540, patch_size=14, n_embd=1024, n_ff=4096, n_head=16, n_layer=24,
                       projection_dim=1024, init_std=0.02, projector="lightonocr", merge=2),
           family="lightonocr"),
)

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        # std 0.3, not 0.02: with tiny widths and a tied output, 0.02 makes the model echo the last prompt
        # token and ignore the image; 0.3 gives varied output that depends on the image.
        "tiny": Preset(
            name="tiny",
            text=TextShape(
                n_embd=64,
                n_layer=2,
                n_head=4,
                n_head_kv=4,
                n_ff=128,
                file_type="F16",
                tied_output=True,
                init_std=0.3,
            ),
            vision=VisionShape(
                image_size=56,
                patch_size=14,
                n_embd=64,
                n_ff=128,
                n_head=4,
                n_layer=2,
                projection_dim=64,
                init_std=0.3,
            ),
        ),
        "1b": Preset(  # TinyLlama-like: grouped-query attention
            name="1b",
            text=TextShape(
                n_embd=2048,
                n_layer=22,
                n_head=32,
                n_head_kv=4,
                n_ff=5632,
                file_type="Q4_K_M",
                tied_output=False,
                init_std=0.02,
            ),
            vision=_VIT_L_336,
        ),
        "llava-1.5-7b": Preset(
            name="llava-1.5-7b",
            text=TextShape(
                n_embd=4096,
                n_layer=32,
                n_head=32,
                n_head_kv=32,
                n_ff=11008,
                file_type="Q4_K_M",
                tied_output=False,
                init_std=0.02,
            ),
            vision=_VIT_L_336,
        ),
        **{p.name: p for p in (*_FAMILY_TINY, *_FAMILY_FULL)},
    }
)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def tensor_plan(preset: str) -> PairPlan:
    """The full tensor plan of a preset, without generating any data."""
    p = get_preset(preset)
    return PairPlan(
        text=text_tensor_plan(p.text),
        mmproj=mmproj_tensor_plan(p.vision, n_embd_text=p.text.n_embd),
    )
