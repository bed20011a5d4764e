"""Check GGUF files with gguf-py before llama.cpp sees them.

llama.cpp aborts the whole process (SIGABRT) on some malformed mmproj files — a projector matrix with the
wrong inner width fails a ``GGML_ASSERT`` during the warm-up encode, a key of the wrong type fails one in
the GGUF accessors — and reports other problems only to its C log. These checks turn every such problem
into a :class:`~pagescribe.errors.ModelInvalid` whose message names the file and says what is wrong.

Only headers are read (the file is memory-mapped); tensor data is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType, LlamaFileType, ReaderField

from pagescribe.errors import ModelInvalid, ModelNotFound
from pagescribe.models.plans import mmproj_tensor_plan, text_tensor_plan
from pagescribe.models.shapes import TextShape, VisionShape

GGUF_MAGIC = b"GGUF"
_INTEGER_TYPES = frozenset(t for t in GGUFValueType if "INT" in t.name)  # UINT8 ... INT64

# The tensor (and which ggml dimension of it) clip.cpp's clip_n_mmproj_embd reads as the projector's output
# width, for the common projector types. Others are not width-checked.
_PROJECTOR_OUTPUT = {
    "mlp": ("mm.2.weight", 1),
    "mlp_norm": ("mm.3.bias", 0),
    "pixtral": ("mm.2.weight", 1),
    "qwen2vl_merger": ("mm.2.bias", 0),
    "qwen2.5vl_merger": ("mm.2.bias", 0),
    "gemma3": ("mm.input_projection.weight", 0),
    "idefics3": ("mm.model.fc.weight", 1),
    "lightonocr": ("mm.2.weight", 1),
}
#: Projector types whose every tensor is checked against the layout their hyperparameters imply (``plans.py``).
_PLANNED_PROJECTORS = frozenset({"qwen2.5vl_merger", "idefics3", "gemma3", "lightonocr"})
#: Text architectures checked the same way (LLaVA's llama has its own check, which also knows MoE files).
_PLANNED_TEXT = frozenset({"qwen2vl", "qwen3", "gemma3"})
# Tensors llama.cpp's loaders take when present but do without (TENSOR_NOT_REQUIRED / get_tensor(..., false)).
_OPTIONAL_TEXT = ("output.weight", ".attn_q.bias", ".attn_k.bias", ".attn_v.bias")

# Keys clip.cpp reads through typed accessors that abort the process when the stored type differs.
_T = GGUFValueType
_CLIP_KEYS: Mapping[str, tuple[GGUFValueType, bool]] = {  # key -> (type, required)
    "clip.has_vision_encoder": (_T.BOOL, True),
    "clip.projector_type": (_T.STRING, False),
    "clip.vision.projector_type": (_T.STRING, False),
    "clip.use_gelu": (_T.BOOL, False),
    "clip.use_silu": (_T.BOOL, False),
    "clip.vision.image_size": (_T.UINT32, True),
    "clip.vision.patch_size": (_T.UINT32, True),
    "clip.vision.embedding_length": (_T.UINT32, True),
    "clip.vision.feed_forward_length": (_T.UINT32, True),
    "clip.vision.block_count": (_T.UINT32, True),
    "clip.vision.projection_dim": (_T.UINT32, True),
    "clip.vision.attention.head_count": (_T.UINT32, True),
    "clip.vision.attention.head_count_kv": (_T.UINT32, False),
    "clip.vision.attention.head_dim": (_T.UINT32, False),
    "clip.vision.attention.layer_norm_epsilon": (_T.FLOAT32, True),
    # projector-specific settings, read by typed accessors too (clip.cpp load_hparams)
    "clip.vision.n_wa_pattern": (_T.UINT32, False),
    "clip.vision.projector.scale_factor": (_T.UINT32, False),
    "clip.vision.preproc_image_size": (_T.UINT32, False),
    "clip.vision.spatial_merge_size": (_T.UINT32, False),
    "clip.vision.image_min_pixels": (_T.UINT32, False),
    "clip.vision.image_max_pixels": (_T.UINT32, False),
    "clip.vision.window_size": (_T.UINT32, False),
    "clip.vision.preproc_min_tiles": (_T.UINT32, False),
    "clip.vision.preproc_max_tiles": (_T.UINT32, False),
    "clip.has_llava_projector": (_T.BOOL, False),
    "clip.has_audio_encoder": (_T.BOOL, False),
}


@dataclass(frozen=True, slots=True)
class TextModelInfo:
    """What a text-model GGUF declares about itself."""

    path: Path
    architecture: str
    name: str
    n_embd: int
    n_layer: int
    n_vocab: int
    context_length: int
    chat_template: str | None = field(repr=False)
    file_type: str | None  # e.g. "Q4_K_M", "F16"; None when the file does not say


@dataclass(frozen=True, slots=True)
class MmprojInfo:
    """What a multimodal-projector (mmproj) GGUF declares about itself."""

    path: Path
    projector_type: str
    n_embd_out: int | None  # None for projector types whose output width is not checked
    image_size: int
    patch_size: int


class _Truncated(Exception):
    def __init__(self, end: int, size: int) -> None:
        super().__init__(f"tensor data ends at byte {end:,} but the file has {size:,} bytes")


class _Reader(GGUFReader):
    """GGUFReader that skips the costly parts and checks for truncation before slicing tensor data.

    The stock reader makes several numpy views per array element: over a second for a 32000-token
    vocabulary. Here scalar arrays are read as one slice and string arrays are only stepped over: their
    element count is kept, their contents are not (validation needs no more).
    """

    def _get_field_parts(self, orig_offs: int, raw_type: int) -> tuple[int, list[Any], list[int], list[Any]]:
        if raw_type != GGUFValueType.ARRAY or self.byte_order != "I":
            return super()._get_field_parts(orig_offs, raw_type)
        raw_itype = self._get(orig_offs, np.uint32)
        alen = self._get(orig_offs + 4, np.uint64)
        itype, count, start = GGUFValueType(int(raw_itype[0])), int(alen[0]), orig_offs + 12
        nptype = self.gguf_scalar_to_np.get(itype)
        if nptype is not None:
            values = self._get(start, nptype, count)
        elif itype == GGUFValueType.STRING:
            values = self._get(start, np.uint8, _skip_strings(self.data, start, count) - start)
        else:
            return super()._get_field_parts(orig_offs, raw_type)
        if len(values) < (count if nptype is not None else 0):
            raise ValueError("array runs past the end of the file")
        return 12 + int(values.nbytes), [raw_itype, alen, values], [2], [GGUFValueType.ARRAY, itype]

    def _build_tensors(self, start_offs: int, fields: list[ReaderField]) -> None:
        end = start_offs
        for info in fields:
            dims, raw_dtype, offset = info.parts[3], info.parts[4], info.parts[5]
            block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(int(raw_dtype[0]))]
            n_elements = int(np.prod(dims.astype(np.int64)))
            end = max(end, start_offs + int(offset[0]) + n_elements * type_size // block_size)
        if end > len(self.data):
            raise _Truncated(end, len(self.data))
        super()._build_tensors(start_offs, fields)


def _skip_strings(data: npt.NDArray[np.uint8], offset: int, count: int) -> int:
    view = data.data  # a memoryview: plain slicing, no numpy view per string
    for _ in range(count):
        if offset + 8 > len(view):
            raise ValueError("string array runs past the end of the file")
        offset += 8 + int.from_bytes(view[offset : offset + 8], "little")
    if offset > len(view):
        raise ValueError("string array runs past the end of the file")
    return offset


class _Gguf:
    """A parsed GGUF header plus typed, error-reporting access to its keys and tensor shapes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader = _open(path)
        self.fields: Mapping[str, ReaderField] = self.reader.fields
        # ggml order (ne[0] first), as llama.cpp prints shapes
        self.shapes = {t.name: tuple(int(d) for d in t.shape) for t in self.reader.tensors}

    def fail(self, problem: str) -> ModelInvalid:
        return ModelInvalid(f"{self.path}: {problem}")

    def value_type(self, key: str) -> GGUFValueType | None:
        field = self.fields.get(key)
        return None if field is None else GGUFValueType(field.types[0])

    def get(self, key: str) -> Any:
        field = self.fields.get(key)
        return None if field is None else field.contents()

    def get_int(self, key: str, *, default: int | None = None) -> int:
        field = self.fields.get(key)
        if field is None:
            if default is None:
                raise self.fail(f"missing key {key}")
            return default
        if field.types[0] not in _INTEGER_TYPES:
            raise self.fail(f"key {key} should be an integer, found {GGUFValueType(field.types[0]).name}")
        return int(field.contents())

    def get_str(self, key: str) -> str | None:
        field = self.fields.get(key)
        if field is None:
            return None
        if field.types[0] != GGUFValueType.STRING:
            raise self.fail(f"key {key} should be a string, found {GGUFValueType(field.types[0]).name}")
        return str(field.contents())

    def array_len(self, key: str) -> int | None:
        field = self.fields.get(key)
        if field is None or field.types[0] != GGUFValueType.ARRAY:
            return None
        return int(field.parts[4][0])  # key length, key, value type, item type, item count

    def expect_shapes(
        self, expected: Mapping[str, tuple[int, ...]], *, optional: frozenset[str] = frozenset()
    ) -> None:
        for name, shape in expected.items():
            actual = self.shapes.get(name)
            if actual is None:
                if name in optional:
                    continue
                raise self.fail(f"missing tensor {name}")
            if actual != shape:
                raise self.fail(f"tensor {name} has shape {list(actual)}, expected {list(shape)}")


def is_gguf(path: Path) -> bool:
    """Whether ``path`` is a readable file that starts with the GGUF magic (reads 4 bytes)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def gguf_architecture(path: Path) -> str | None:
    """The file's ``general.architecture`` (``llama``, ``clip``, ...); None if it is not a readable GGUF."""
    if not is_gguf(path):
        return None
    try:
        arch = _Reader(path).fields.get("general.architecture")
        return None if arch is None else str(arch.contents())
    except Exception:  # any parse failure means "not a usable GGUF" here
        return None


def _open(path: Path) -> _Reader:
    if not path.exists():
        raise ModelNotFound(f"{path}: file not found")
    if not path.is_file():
        raise ModelInvalid(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise ModelInvalid(f"{path}: the file is empty")
    if not is_gguf(path):
        raise ModelInvalid(f"{path}: not a GGUF file (bad magic)")
    try:
        return _Reader(path)
    except _Truncated as e:
        raise ModelInvalid(f"{path}: truncated: {e}") from None
    except Exception as e:  # gguf-py raises whatever numpy raises on a corrupt header
        raise ModelInvalid(f"{path}: unreadable GGUF header, the file is corrupt or truncated ({e})") from e


def _file_type_name(value: int) -> str | None:
    if value < 0:
        return None
    try:
        return LlamaFileType(value).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:
        return str(value)


def inspect_text_model(path: Path) -> TextModelInfo:
    """Read and check a text-model GGUF; errors (``ModelNotFound``, ``ModelInvalid``) name the file."""
    g = _Gguf(Path(path))
    arch = g.get_str("general.architecture")
    if arch is None:
        raise g.fail("missing key general.architecture")
    if arch == "clip":
        raise g.fail("this is a multimodal projector (mmproj) file, not a text model")
    n_vocab = g.array_len("tokenizer.ggml.tokens")
    if not n_vocab:
        raise g.fail("has no tokenizer vocabulary (tokenizer.ggml.tokens)")
    info = TextModelInfo(
        path=g.path,
        architecture=arch,
        name=g.get_str("general.name") or g.path.stem,
        n_embd=g.get_int(f"{arch}.embedding_length"),
        n_layer=g.get_int(f"{arch}.block_count"),
        n_vocab=n_vocab,
        context_length=g.get_int(f"{arch}.context_length"),
        chat_template=g.get_str("tokenizer.chat_template"),
        file_type=_file_type_name(g.get_int("general.file_type", default=-1)),
    )
    if arch == "llama":
        _check_llama_tensors(g, info)
    elif arch in _PLANNED_TEXT:
        _check_planned_text(g, info)
    return info


def _check_planned_text(g: _Gguf, info: TextModelInfo) -> None:
    """Every tensor the loader (``src/models/<arch>.cpp``) creates, with the shape the keys imply."""
    arch, e = info.architecture, info.n_embd
    n_head = g.get_int(f"{arch}.attention.head_count")
    n_head_kv = g.get_int(f"{arch}.attention.head_count_kv", default=n_head)
    head_dim = g.get_int(f"{arch}.attention.key_length", default=e // n_head if n_head > 0 else 0)
    if n_head <= 0 or n_head_kv <= 0 or head_dim <= 0 or n_head % n_head_kv:
        raise g.fail(f"attention heads {n_head} / {n_head_kv} (key/value) of width {head_dim} do not fit")
    if g.get_int(f"{arch}.attention.value_length", default=head_dim) != head_dim:
        raise g.fail("attention key and value widths differ, which this architecture does not allow")
    sections: tuple[int, ...] = ()
    if arch == "qwen2vl":
        sections = _rope_sections(g, f"{arch}.rope.dimension_sections", head_dim)
    shape = TextShape(
        n_embd=e, n_layer=info.n_layer, n_head=n_head, n_head_kv=n_head_kv,
        n_ff=g.get_int(f"{arch}.feed_forward_length"), file_type="F16", tied_output=False, init_std=0.0,
        n_vocab=info.n_vocab, arch=arch,  # type: ignore[arg-type]
        head_dim_override=head_dim, rope_sections=sections,
    )
    expected = {s.name: tuple(reversed(s.shape)) for s in text_tensor_plan(shape)}
    optional = frozenset(n for n in expected if n.endswith(_OPTIONAL_TEXT))
    g.expect_shapes(expected, optional=optional)


def _rope_sections(g: _Gguf, key: str, head_dim: int) -> tuple[int, ...]:
    # M-RoPE rotates head_dim / 2 pairs split into these sections; more than that fails a GGML_ASSERT in ggml
    field = g.fields.get(key)
    if field is None or field.types[0] != GGUFValueType.ARRAY or field.types[-1] not in _INTEGER_TYPES:
        raise g.fail(f"key {key} must be an array of 4 integers (the M-RoPE sections)")
    sections = tuple(int(x) for x in field.contents())
    if len(sections) < 3 or sum(sections) > head_dim // 2:
        raise g.fail(f"M-RoPE sections {list(sections)} do not fit attention heads of width {head_dim}")
    return sections


def _check_llama_tensors(g: _Gguf, info: TextModelInfo) -> None:
    e, n_vocab = info.n_embd, info.n_vocab
    n_head = g.get_int("llama.attention.head_count")
    n_head_kv = g.get_int("llama.attention.head_count_kv", default=n_head)
    if n_head <= 0 or n_head_kv <= 0 or e % n_head:
        raise g.fail(f"embedding width {e} is not divisible into {n_head} attention heads")
    head_k = g.get_int("llama.attention.key_length", default=e // n_head)
    head_v = g.get_int("llama.attention.value_length", default=e // n_head)
    expected = {"token_embd.weight": (e, n_vocab), "output_norm.weight": (e,), "output.weight": (e, n_vocab)}
    moe = g.get_int("llama.expert_count", default=0) > 0  # mixture-of-experts FFNs: not checked here
    n_ff = 0 if moe else g.get_int("llama.feed_forward_length")
    for i in range(info.n_layer):
        p = f"blk.{i}."
        expected |= {
            p + "attn_norm.weight": (e,),
            p + "attn_q.weight": (e, n_head * head_k),
            p + "attn_k.weight": (e, n_head_kv * head_k),
            p + "attn_v.weight": (e, n_head_kv * head_v),
            p + "attn_output.weight": (n_head * head_v, e),
            p + "ffn_norm.weight": (e,),
        }
        if not moe:
            expected |= {
                p + "ffn_gate.weight": (e, n_ff),
                p + "ffn_up.weight": (e, n_ff),
                p + "ffn_down.weight": (n_ff, e),
            }
    g.expect_shapes(expected, optional=frozenset({"output.weight"}))  # absent output: tied to token_embd


def inspect_mmproj(path: Path) -> MmprojInfo:
    """Read and check a multimodal-projector GGUF (arch ``clip``); errors name the file and the problem."""
    g = _Gguf(Path(path))
    arch = g.get_str("general.architecture")
    if arch != "clip":
        raise g.fail(
            f"general.architecture is {arch!r}, expected 'clip': "
            "this is not a multimodal projector (mmproj) file"
        )
    _check_clip_keys(g)
    projector = g.get_str("clip.projector_type") or g.get_str("clip.vision.projector_type")
    if not projector:
        raise g.fail("missing the projector type (clip.projector_type)")
    image_size, patch_size = g.get_int("clip.vision.image_size"), g.get_int("clip.vision.patch_size")
    if patch_size <= 0 or image_size % patch_size:
        raise g.fail(f"image size {image_size} is not a multiple of the patch size {patch_size}")
    if projector == "mlp":
        _check_llava_tensors(g, image_size=image_size, patch_size=patch_size)
    elif projector in _PLANNED_PROJECTORS:
        _check_planned_projector(g, projector, image_size=image_size, patch_size=patch_size)
    return MmprojInfo(
        path=g.path,
        projector_type=projector,
        n_embd_out=_projector_width(g, projector),
        image_size=image_size,
        patch_size=patch_size,
    )


def _check_clip_keys(g: _Gguf) -> None:
    for key, (kind, required) in _CLIP_KEYS.items():
        actual = g.value_type(key)
        if actual is None and required:
            raise g.fail(f"missing key {key}")
        if actual is not None and actual != kind:
            raise g.fail(f"key {key} has type {actual.name}, llama.cpp requires {kind.name}")
    if g.get("clip.has_vision_encoder") is not True:
        raise g.fail("has no vision encoder (clip.has_vision_encoder is false)")
    for key in ("clip.vision.image_mean", "clip.vision.image_std"):
        field = g.fields.get(key)
        float_array = field is not None and field.types == [GGUFValueType.ARRAY, GGUFValueType.FLOAT32]
        if field is None or not float_array or len(field.contents()) < 3:
            raise g.fail(f"key {key} must be an array of 3 floats (the per-channel pixel normalization)")


def _check_llava_tensors(g: _Gguf, *, image_size: int, patch_size: int) -> None:
    e, f = g.get_int("clip.vision.embedding_length"), g.get_int("clip.vision.feed_forward_length")
    mm2 = g.shapes.get("mm.2.weight")
    if mm2 is None or len(mm2) != 2:
        raise g.fail("missing tensor mm.2.weight (the LLaVA projector's second layer)")
    hidden, out = mm2
    n_pos = (image_size // patch_size) ** 2 + (1 if "v.class_embd" in g.shapes else 0)
    expected = {
        "mm.0.weight": (e, hidden),
        "mm.0.bias": (hidden,),
        "mm.2.bias": (out,),
        "v.class_embd": (e,),
        "v.patch_embd.weight": (patch_size, patch_size, 3, e),
        "v.position_embd.weight": (e, n_pos),
        "v.pre_ln.weight": (e,),
        "v.pre_ln.bias": (e,),
        "v.post_ln.weight": (e,),
        "v.post_ln.bias": (e,),
    }
    for i in range(g.get_int("clip.vision.block_count")):
        b = f"v.blk.{i}."
        for proj in ("attn_q", "attn_k", "attn_v", "attn_out"):
            expected |= {b + proj + ".weight": (e, e), b + proj + ".bias": (e,)}
        for norm in ("ln1", "ln2"):
            expected |= {b + norm + ".weight": (e,), b + norm + ".bias": (e,)}
        for ffn in ("ffn_down", "ffn_up"):
            if b + ffn + ".weight" not in g.shapes:
                raise g.fail(f"missing tensor {b}{ffn}.weight")
        # The legacy converter stores fc1 as ffn_down and fc2 as ffn_up; clip.cpp accepts both orders.
        down_is_fc1 = g.shapes.get(b + "ffn_down.weight") == (e, f)
        fc1, fc2 = (b + "ffn_down", b + "ffn_up") if down_is_fc1 else (b + "ffn_up", b + "ffn_down")
        expected |= {
            fc1 + ".weight": (e, f),
            fc1 + ".bias": (f,),
            fc2 + ".weight": (f, e),
            fc2 + ".bias": (e,),
        }
    optional = frozenset(
        {"v.class_embd", "v.pre_ln.weight", "v.pre_ln.bias", "v.post_ln.weight", "v.post_ln.bias"}
    )
    g.expect_shapes(expected, optional=optional)


def _merge(g: _Gguf, projector: str) -> int:
    """What the projector folds into one token per side, as clip.cpp reads it (its default when absent)."""
    if projector == "qwen2.5vl_merger":
        if "clip.vision.n_wa_pattern" not in g.fields:
            raise g.fail("missing key clip.vision.n_wa_pattern (Qwen2.5-VL's window-attention pattern)")
        return g.get_int("clip.vision.spatial_merge_size", default=2)
    if projector == "idefics3":
        merge = g.get_int("clip.vision.projector.scale_factor", default=1)
        if merge < 2:  # clip.cpp: GGML_ASSERT(scale_factor > 1) in the pixel shuffle
            raise g.fail(f"idefics3 projector scale factor {merge} (clip.vision.projector.scale_factor) must be > 1")
        return merge
    if projector == "gemma3":
        return g.get_int("clip.vision.projector.scale_factor", default=4)
    return g.get_int("clip.vision.spatial_merge_size", default=1)


def _check_planned_projector(g: _Gguf, projector: str, *, image_size: int, patch_size: int) -> None:
    """Every tensor clip.cpp's loader and graph use for ``projector``, with the shape the keys imply (a matrix of
    the wrong width fails a GGML_ASSERT during the warm-up encode)."""
    merge = _merge(g, projector)
    n_per_side = image_size // patch_size
    if merge <= 0 or (projector == "gemma3" and n_per_side % merge):
        raise g.fail(f"{n_per_side} patches a side cannot be merged {merge} at a time")
    out = _projector_width(g, projector)
    assert out is not None
    if projector == "qwen2.5vl_merger" and g.get_int("clip.vision.projection_dim") != out:
        raise g.fail(f"clip.vision.projection_dim {g.get_int('clip.vision.projection_dim')} is not the merger's "
                     f"output width {out}")
    vision = VisionShape(
        image_size=image_size, patch_size=patch_size, n_embd=g.get_int("clip.vision.embedding_length"),
        n_ff=g.get_int("clip.vision.feed_forward_length"), n_head=g.get_int("clip.vision.attention.head_count"),
        n_layer=g.get_int("clip.vision.block_count"), projection_dim=out, init_std=0.0,
        projector=projector, merge=merge,  # type: ignore[arg-type]
    )
    if vision.n_head <= 0 or vision.n_embd % vision.n_head:
        raise g.fail(f"vision width {vision.n_embd} is not divisible into {vision.n_head} attention heads")
    expected = {s.name: tuple(reversed(s.shape)) for s in mmproj_tensor_plan(vision, n_embd_text=out)}
    if projector == "lightonocr":  # its MLP's hidden width is whatever mm.1 makes (the text width in LightOnOCR)
        hidden = g.shapes.get("mm.1.weight", (0, out))[-1]
        expected |= {"mm.1.weight": (vision.n_embd, hidden), "mm.2.weight": (hidden, out)}
    g.expect_shapes(expected)


def _projector_width(g: _Gguf, projector: str) -> int | None:
    source = _PROJECTOR_OUTPUT.get(projector)
    if source is None:
        return None
    name, dim = source
    shape = g.shapes.get(name)
    if shape is None or len(shape) <= dim:
        raise g.fail(f"missing tensor {name} (the {projector} projector's output layer)")
    return shape[dim]


def validate_pair(text: Path, mmproj: Path) -> tuple[TextModelInfo, MmprojInfo]:
    """Check both files and that the projector's output width equals the text model's embedding width."""
    text_info = inspect_text_model(text)
    mmproj_info = inspect_mmproj(mmproj)
    if mmproj_info.n_embd_out is not None and mmproj_info.n_embd_out != text_info.n_embd:
        raise ModelInvalid(
            f"{mmproj_info.path}: projector output width {mmproj_info.n_embd_out} does not match the text "
            f"model's embedding width {text_info.n_embd} ({text_info.path}); the two files are not a pair"
        )
    return text_info, mmproj_info
