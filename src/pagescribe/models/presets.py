"""Shapes of the synthesized models and the tensor layout they imply.

A *preset* fixes the text model (a Llama decoder) and the vision tower (a CLIP ViT with the LLaVA-1.5
two-layer MLP projector). From a preset the functions here derive the exact tensor plan — names, numpy
shapes, ggml types, sizes — without touching any data, so tests can check the 4 GB layout in milliseconds
and :mod:`pagescribe.models.validate` can compare a file's tensors against what its hyperparameters imply.

Shapes are numpy order (slowest dimension first); ggml's ``ne`` order is the reverse.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

F32 = GGMLQuantizationType.F32
F16 = GGMLQuantizationType.F16
Q4_K = GGMLQuantizationType.Q4_K
Q6_K = GGMLQuantizationType.Q6_K

TextFileType = Literal["F16", "Q4_K_M"]


@dataclass(frozen=True, slots=True)
class TextShape:
    """Hyperparameters of a Llama text model."""

    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    file_type: TextFileType
    tied_output: bool
    init_std: float
    n_vocab: int = 32000
    context_length: int = 4096

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_dim(self) -> int:
        return self.head_dim * self.n_head_kv


@dataclass(frozen=True, slots=True)
class VisionShape:
    """Hyperparameters of a CLIP ViT image encoder (LLaVA layout: class token, no post-norm)."""

    image_size: int
    patch_size: int
    n_embd: int
    n_ff: int
    n_head: int
    n_layer: int
    projection_dim: int
    init_std: float

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def n_positions(self) -> int:
        return self.n_patches + 1  # + the class token


@dataclass(frozen=True, slots=True)
class Preset:
    """A named pair of shapes: what ``pagescribe model synth --preset NAME`` writes."""

    name: str
    text: TextShape
    vision: VisionShape

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
    }
)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


class Init(enum.Enum):
    """How a tensor's values are drawn."""

    NORMAL = "normal"  # N(0, std): weights, biases, embeddings
    ONES = "ones"  # norm scales


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One tensor of a plan: everything but the data."""

    name: str
    shape: tuple[int, ...]
    ggml_type: GGMLQuantizationType
    init: Init = Init.NORMAL

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def nbytes(self) -> int:
        block_size, type_size = GGML_QUANT_SIZES[self.ggml_type]
        return self.n_elements // block_size * type_size


@dataclass(frozen=True, slots=True)
class PairPlan:
    """The tensors of both files of a preset, in file order."""

    text: tuple[TensorSpec, ...]
    mmproj: tuple[TensorSpec, ...]


def _use_more_bits(i_layer: int, n_layer: int) -> bool:
    # llama.cpp's llama_tensor_get_type gives these layers of attn_v / ffn_down Q6_K under Q4_K_M.
    return i_layer < n_layer // 8 or i_layer >= 7 * n_layer // 8 or (i_layer - n_layer // 8) % 3 == 2


def _matrix_type(shape: TextShape, role: str, i_layer: int = 0) -> GGMLQuantizationType:
    """The ggml type llama.cpp's quantizer picks for a weight matrix under the preset's file type."""
    if shape.file_type == "F16":
        return F16
    if role == "output":
        return Q6_K
    if role in ("attn_v", "ffn_down") and _use_more_bits(i_layer, shape.n_layer):
        return Q6_K
    return Q4_K


def text_tensor_plan(shape: TextShape) -> tuple[TensorSpec, ...]:
    """Tensors of a Llama text model in the order ``convert_hf_to_gguf.py`` writes them."""
    e, f, kvd = shape.n_embd, shape.n_ff, shape.kv_dim
    specs = [TensorSpec("token_embd.weight", (shape.n_vocab, e), _matrix_type(shape, "token_embd"))]
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        specs += [
            TensorSpec(p + "attn_norm.weight", (e,), F32, Init.ONES),
            TensorSpec(p + "attn_q.weight", (e, e), _matrix_type(shape, "attn_q", i)),
            TensorSpec(p + "attn_k.weight", (kvd, e), _matrix_type(shape, "attn_k", i)),
            TensorSpec(p + "attn_v.weight", (kvd, e), _matrix_type(shape, "attn_v", i)),
            TensorSpec(p + "attn_output.weight", (e, e), _matrix_type(shape, "attn_output", i)),
            TensorSpec(p + "ffn_norm.weight", (e,), F32, Init.ONES),
            TensorSpec(p + "ffn_gate.weight", (f, e), _matrix_type(shape, "ffn_gate", i)),
            TensorSpec(p + "ffn_up.weight", (f, e), _matrix_type(shape, "ffn_up", i)),
            TensorSpec(p + "ffn_down.weight", (e, f), _matrix_type(shape, "ffn_down", i)),
        ]
    specs.append(TensorSpec("output_norm.weight", (e,), F32, Init.ONES))
    if not shape.tied_output:
        specs.append(TensorSpec("output.weight", (shape.n_vocab, e), _matrix_type(shape, "output")))
    return tuple(specs)


def mmproj_tensor_plan(vision: VisionShape, *, n_embd_text: int) -> tuple[TensorSpec, ...]:
    """Tensors of a LLaVA-1.5 mmproj in the layout of llama.cpp's legacy ``convert_image_encoder_to_gguf.py``.

    The FFN names follow that converter: ``ffn_down`` holds HF ``fc1`` (E -> F) and ``ffn_up`` holds ``fc2``;
    clip.cpp notices and swaps them.
    """
    e, f, t, p = vision.n_embd, vision.n_ff, n_embd_text, vision.patch_size
    specs = [
        TensorSpec("mm.0.weight", (t, e), F16),
        TensorSpec("mm.0.bias", (t,), F32),
        TensorSpec("mm.2.weight", (t, t), F16),
        TensorSpec("mm.2.bias", (t,), F32),
        TensorSpec("v.class_embd", (e,), F32),
        TensorSpec("v.patch_embd.weight", (e, 3, p, p), F16),  # ggml's conv kernels must be f16
        TensorSpec("v.position_embd.weight", (vision.n_positions, e), F16),
        TensorSpec("v.pre_ln.weight", (e,), F32, Init.ONES),
        TensorSpec("v.pre_ln.bias", (e,), F32),
    ]
    for i in range(vision.n_layer):
        b = f"v.blk.{i}."
        for proj in ("attn_q", "attn_k", "attn_v", "attn_out"):
            specs += [
                TensorSpec(b + proj + ".weight", (e, e), F16),
                TensorSpec(b + proj + ".bias", (e,), F32),
            ]
        specs += [
            TensorSpec(b + "ln1.weight", (e,), F32, Init.ONES),
            TensorSpec(b + "ln1.bias", (e,), F32),
            TensorSpec(b + "ffn_down.weight", (f, e), F16),
            TensorSpec(b + "ffn_down.bias", (f,), F32),
            TensorSpec(b + "ffn_up.weight", (e, f), F16),
            TensorSpec(b + "ffn_up.bias", (e,), F32),
            TensorSpec(b + "ln2.weight", (e,), F32, Init.ONES),
            TensorSpec(b + "ln2.bias", (e,), F32),
        ]
    return tuple(specs)


def tensor_plan(preset: str) -> PairPlan:
    """The full tensor plan of a preset, without generating any data."""
    p = get_preset(preset)
    return PairPlan(
        text=text_tensor_plan(p.text),
        mmproj=mmproj_tensor_plan(p.vision, n_embd_text=p.text.n_embd),
    )
