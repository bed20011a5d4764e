"""The hyperparameters of synthesized models and the tensor specs derived from them (no data).

Shapes are numpy order (slowest dimension first); ggml's ``ne`` order is the reverse.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

F32 = GGMLQuantizationType.F32
F16 = GGMLQuantizationType.F16
Q4_K = GGMLQuantizationType.Q4_K
Q6_K = GGMLQuantizationType.Q6_K
Q8_0 = GGMLQuantizationType.Q8_0

TextFileType = Literal["F16", "Q4_K_M", "Q8_0"]
#: Text architectures the synthesizer writes (``general.architecture``), as llama.cpp's loaders name them.
TextArch = Literal["llama", "qwen2vl", "qwen3", "gemma3"]
#: Projector types the synthesizer writes (``clip.projector_type``), as clip.cpp names them.
ProjectorType = Literal["mlp", "qwen2.5vl_merger", "idefics3", "gemma3", "lightonocr"]

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True, slots=True)
class TextShape:
    """Hyperparameters of a decoder-only text model (``arch`` picks its tensor layout and keys)."""

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
    arch: TextArch = "llama"
    head_dim_override: int = 0  # attention.key_length when it is not n_embd / n_head (gemma3, qwen3)
    rope_freq_base: float = 10000.0
    norm_eps: float = 1e-5
    rope_sections: tuple[int, ...] = ()  # qwen2vl's M-RoPE sections (4 numbers)
    sliding_window: int = 0  # gemma3's local attention window
    rope_scaling_factor: float = 0.0  # gemma3: linear scaling of the global layers

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.n_embd // self.n_head

    @property
    def q_dim(self) -> int:
        return self.head_dim * self.n_head

    @property
    def kv_dim(self) -> int:
        return self.head_dim * self.n_head_kv


@dataclass(frozen=True, slots=True)
class VisionShape:
    """Hyperparameters of a ViT image encoder and its projector (``projector`` picks the layout).

    ``merge`` is what the projector folds into one token per side: Qwen's spatial merge (2), idefics3's pixel
    shuffle (its scale factor), Gemma 3's average pooling kernel, LightOnOCR's patch merger.
    """

    image_size: int
    patch_size: int
    n_embd: int
    n_ff: int
    n_head: int
    n_layer: int
    projection_dim: int
    init_std: float
    projector: ProjectorType = "mlp"
    merge: int = 1
    preproc_image_size: int = 0  # idefics3: the longest edge a page is resized to before tiling
    n_wa_pattern: int = 0  # qwen2.5vl: every n-th block attends to the whole image, the others to windows
    eps: float = 1e-5
    image_mean: tuple[float, float, float] = _CLIP_MEAN
    image_std: tuple[float, float, float] = _CLIP_STD

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def n_positions(self) -> int:
        return self.n_patches + 1  # + the class token (LLaVA's CLIP)


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


def norm(name: str, width: int) -> TensorSpec:
    """A norm scale: f32 ones."""
    return TensorSpec(name, (width,), F32, Init.ONES)


def bias(name: str, width: int) -> TensorSpec:
    return TensorSpec(name, (width,), F32)
