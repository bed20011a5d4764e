"""Random-weight, real-architecture GGUF pairs (text model + mmproj) of every supported model family.

The weights are random but the architecture, keys, vocabulary layout and (for the full-size presets) the
quantization mix are those of real files, so llama.cpp loads them, runs them at representative speed and
produces (meaningless) text. ``*-tiny`` presets (and LLaVA's ``tiny``) are a few MB for tests; the others have the
published shapes, for benchmarks. Each key written is one llama.cpp reads (``src/models/<arch>.cpp``,
``src/llama-vocab.cpp``, ``tools/mtmd/clip.cpp``), with the value ``convert_hf_to_gguf.py`` writes.

Files are written tensor by tensor, so memory stays near the size of the largest tensor, and through a
temporary file renamed into place, so a reader never sees half a file. A small sidecar records what was
written; calling :func:`synthesize` again with the same preset and seed returns the existing files.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gguf import GGUFValueType, GGUFWriter, LlamaFileType, quant_shape_to_byte_shape

from pagescribe.models.families import TokenizerSpec, get_family
from pagescribe.models.presets import (
    F16,
    F32,
    Q4_K,
    Q6_K,
    Q8_0,
    Init,
    Preset,
    TensorSpec,
    TextShape,
    VisionShape,
    get_preset,
    mmproj_tensor_plan,
    text_tensor_plan,
)
from pagescribe.models.vocab import build_bpe_vocab, build_vocab

# Bump whenever the bytes written for a given preset and seed change, so cached files are rewritten.
GENERATOR_VERSION = 1

_FILE_TYPES = {
    "F16": LlamaFileType.MOSTLY_F16, "Q4_K_M": LlamaFileType.MOSTLY_Q4_K_M, "Q8_0": LlamaFileType.MOSTLY_Q8_0,
}

# Standard deviation of (q - mean) for a uniform 4-bit / 6-bit code: sqrt((2^(2b) - 1) / 12).
_Q4_STD = math.sqrt((16**2 - 1) / 12)
_Q6_STD = math.sqrt((64**2 - 1) / 12)
_Q8_STD = math.sqrt((256**2 - 1) / 12)


@dataclass(frozen=True, slots=True)
class SynthPair:
    """The two files of a synthesized model."""

    text: Path
    mmproj: Path


def chat_template(family: str = "llava-1.5") -> str:
    """The family's chat template (Jinja2) shipped with the package and written into synthesized models."""
    name = get_family(family).template
    return resources.files("pagescribe").joinpath(f"templates/{name}").read_text(encoding="utf-8")


def synthesize(preset: str, out_dir: Path, *, seed: int = 0, overwrite: bool = False) -> SynthPair:
    """Write the GGUF pair of ``preset`` with weights drawn from ``seed`` into ``out_dir``.

    The same preset and seed always give byte-identical files. Unless ``overwrite`` is set, files already
    written for the same preset, seed and generator version are returned as they are. Safe to call from
    several processes at once.
    """
    spec = get_preset(preset)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = SynthPair(text=out_dir / spec.text_filename, mmproj=out_dir / spec.mmproj_filename)
    stamp = out_dir / f".synth-{preset}.json"
    wanted = {"generator": GENERATOR_VERSION, "preset": preset, "seed": seed}
    with _exclusive(out_dir / f".synth-{preset}.lock"):
        if not overwrite and _is_current(stamp, wanted, pair):
            return pair
        stamp.unlink(missing_ok=True)
        _write_gguf(
            pair.text,
            spec.text.arch,
            _text_kv(spec, seed),
            text_tensor_plan(spec.text),
            std=spec.text.init_std,
            seed=(seed, 0),
        )
        _write_gguf(
            pair.mmproj,
            "clip",
            _mmproj_kv(spec, seed),
            mmproj_tensor_plan(spec.vision, n_embd_text=spec.text.n_embd),
            std=spec.vision.init_std,
            seed=(seed, 1),
        )
        record = {**wanted, "sizes": {p.name: p.stat().st_size for p in (pair.text, pair.mmproj)}}
        _atomic_write(stamp, lambda tmp: tmp.write_text(json.dumps(record, indent=2), encoding="utf-8"))
    return pair


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # One writer per preset and directory; the others wait and then find the files already written.
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_current(stamp: Path, wanted: dict[str, Any], pair: SynthPair) -> bool:
    try:
        record = json.loads(stamp.read_text(encoding="utf-8"))
        sizes = record["sizes"]
        return all(record.get(k) == v for k, v in wanted.items()) and all(
            p.stat().st_size == sizes[p.name] for p in (pair.text, pair.mmproj)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _description(spec: Preset, seed: int) -> str:
    return (
        f"pagescribe synthesized model, preset {spec.name}, seed {seed}: random weights, "
        "the text it generates is meaningless"
    )


def _text_kv(spec: Preset, seed: int) -> Callable[[GGUFWriter], None]:
    t: TextShape = spec.text

    def add(w: GGUFWriter) -> None:
        w.add_name(f"pagescribe-{spec.name}")
        w.add_description(_description(spec, seed))
        w.add_file_type(int(_FILE_TYPES[t.file_type]))
        if t.file_type != "F16":
            w.add_quantization_version(2)
        for key, value in _text_hparams(t).items():
            w.add_key_value(f"{t.arch}.{key}", value[0], value[1], sub_type=GGUFValueType.INT32)
        w.add_float32(f"{t.arch}.attention.layer_norm_rms_epsilon", t.norm_eps)
        w.add_float32(f"{t.arch}.rope.freq_base", t.rope_freq_base)
        if t.rope_scaling_factor:
            w.add_string(f"{t.arch}.rope.scaling.type", "linear")
            w.add_float32(f"{t.arch}.rope.scaling.factor", t.rope_scaling_factor)
        _add_tokenizer(w, spec)

    return add


def _text_hparams(t: TextShape) -> dict[str, tuple[Any, GGUFValueType]]:
    u32 = GGUFValueType.UINT32
    keys: dict[str, tuple[Any, GGUFValueType]] = {
        "context_length": (t.context_length, u32),
        "embedding_length": (t.n_embd, u32),
        "block_count": (t.n_layer, u32),
        "feed_forward_length": (t.n_ff, u32),
        "attention.head_count": (t.n_head, u32),
        "attention.head_count_kv": (t.n_head_kv, u32),
    }
    if t.arch == "llama":
        keys |= {"rope.dimension_count": (t.head_dim, u32), "vocab_size": (t.n_vocab, u32)}
    if t.head_dim_override:
        keys |= {"attention.key_length": (t.head_dim, u32), "attention.value_length": (t.head_dim, u32)}
    if t.rope_sections:
        keys["rope.dimension_sections"] = (list(t.rope_sections), GGUFValueType.ARRAY)
    if t.sliding_window:
        keys["attention.sliding_window"] = (t.sliding_window, u32)
    return keys


def _add_tokenizer(w: GGUFWriter, spec: Preset) -> None:
    tok = get_family(spec.family).tokenizer
    w.add_tokenizer_model(tok.model)
    w.add_tokenizer_pre(tok.pre)
    if tok.model == "llama":  # SentencePiece: pieces with scores, merged by llama.cpp in score order
        vocab = build_vocab(spec.text.n_vocab, **({"head": tok.head} if tok.head else {}), tail=tok.tail)
        tokens, types = vocab.tokens, vocab.token_types
        w.add_token_list(list(tokens))
        w.add_token_scores(list(vocab.scores))
    else:  # byte-level BPE: the merges in rank order
        bpe = build_bpe_vocab(spec.text.n_vocab, tail=tok.tail)
        tokens, types = bpe.tokens, bpe.token_types
        w.add_token_list(list(tokens))
    w.add_token_types(list(types))
    if tok.model == "gpt2":
        w.add_token_merges(list(bpe.merges))
    _add_special_ids(w, tok, tokens)
    w.add_chat_template(chat_template(spec.family))


def _add_special_ids(w: GGUFWriter, tok: TokenizerSpec, tokens: tuple[str, ...]) -> None:
    index = {text: i for i, text in enumerate(tokens)}
    w.add_bos_token_id(index[tok.bos])
    w.add_eos_token_id(index[tok.eos])
    if tok.model == "llama":
        unk = next(i for i, (text, _) in enumerate(tok.head) if text == "<unk>") if tok.head else 0
        w.add_unk_token_id(unk)
    w.add_pad_token_id(index[tok.pad])
    w.add_add_bos_token(tok.add_bos)
    if tok.model == "llama":
        w.add_add_eos_token(False)
        w.add_bool("tokenizer.ggml.add_space_prefix", tok.add_space_prefix)


def _mmproj_kv(spec: Preset, seed: int) -> Callable[[GGUFWriter], None]:
    v: VisionShape = spec.vision

    def add(w: GGUFWriter) -> None:
        w.add_name(f"pagescribe-{spec.name}-mmproj")
        w.add_description(_description(spec, seed))
        w.add_file_type(int(LlamaFileType.MOSTLY_F16))
        if v.projector == "mlp":  # the legacy LLaVA converter's keys
            w.add_bool("clip.has_text_encoder", False)
            w.add_bool("clip.has_vision_encoder", True)
            w.add_bool("clip.has_llava_projector", True)
        else:  # convert_hf_to_gguf.py's MmprojModel
            w.add_string("general.type", "mmproj")
            w.add_bool("clip.has_vision_encoder", True)
        w.add_string("clip.projector_type", v.projector)
        for key, value in {
            "image_size": v.image_size,
            "patch_size": v.patch_size,
            "embedding_length": v.n_embd,
            "feed_forward_length": v.n_ff,
            "projection_dim": v.projection_dim,
            "attention.head_count": v.n_head,
            "block_count": v.n_layer,
        }.items():
            w.add_uint32(f"clip.vision.{key}", value)
        w.add_float32("clip.vision.attention.layer_norm_epsilon", v.eps)
        w.add_array("clip.vision.image_mean", list(v.image_mean))
        w.add_array("clip.vision.image_std", list(v.image_std))
        _add_projector_keys(w, v)

    return add


def _add_projector_keys(w: GGUFWriter, v: VisionShape) -> None:
    """The activation and the projector-specific keys each converter writes (``conversion/*.py``)."""
    if v.projector == "mlp":
        w.add_bool("clip.use_gelu", False)  # CLIP ViT-L uses quick-GELU
    elif v.projector == "qwen2.5vl_merger":
        w.add_bool("clip.use_silu", True)
        w.add_uint32("clip.vision.n_wa_pattern", v.n_wa_pattern)
    elif v.projector == "idefics3":
        w.add_bool("clip.use_gelu", True)
        w.add_uint32("clip.vision.projector.scale_factor", v.merge)
        w.add_uint32("clip.vision.preproc_image_size", v.preproc_image_size)
    elif v.projector == "gemma3":
        w.add_bool("clip.use_gelu", True)
        if v.merge != 4:  # written only when it is not the default (conversion/gemma.py)
            w.add_uint32("clip.vision.projector.scale_factor", v.merge)
    elif v.projector == "lightonocr":
        w.add_bool("clip.use_silu", True)
        w.add_uint32("clip.vision.spatial_merge_size", v.merge)


def _write_gguf(
    path: Path,
    arch: str,
    add_kv: Callable[[GGUFWriter], None],
    specs: Sequence[TensorSpec],
    *,
    std: float,
    seed: tuple[int, int],
) -> None:
    """Stream one GGUF file: header, keys and tensor infos first, then each tensor as it is generated."""

    def write(tmp: Path) -> None:
        writer = GGUFWriter(tmp, arch)
        try:
            add_kv(writer)
            for s in specs:
                if s.ggml_type in (F16, F32):
                    writer.add_tensor_info(s.name, s.shape, _float_dtype(s), s.nbytes)
                else:
                    byte_shape = quant_shape_to_byte_shape(s.shape, s.ggml_type)
                    writer.add_tensor_info(
                        s.name, byte_shape, np.dtype(np.uint8), s.nbytes, raw_dtype=s.ggml_type
                    )
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for index, s in enumerate(specs):
                # One generator per tensor keeps each tensor's values independent of the others' sizes.
                rng = np.random.default_rng([*seed, index])
                writer.write_tensor_data(_tensor_data(s, std=std, rng=rng))
        finally:
            writer.close()

    _atomic_write(path, write)


def _float_dtype(spec: TensorSpec) -> np.dtype[Any]:
    return np.dtype(np.float16 if spec.ggml_type == F16 else np.float32)


def _tensor_data(spec: TensorSpec, *, std: float, rng: np.random.Generator) -> npt.NDArray[Any]:
    if spec.ggml_type == Q4_K:
        return _q4_k_blocks(spec.n_elements // 256, std=std, rng=rng)
    if spec.ggml_type == Q6_K:
        return _q6_k_blocks(spec.n_elements // 256, std=std, rng=rng)
    if spec.ggml_type == Q8_0:
        return _q8_0_blocks(spec.n_elements // 32, std=std, rng=rng)
    dtype = _float_dtype(spec)
    if spec.init is Init.ONES:
        return np.ones(spec.shape, dtype=dtype)
    values = rng.standard_normal(spec.shape, dtype=np.float32)
    values *= np.float32(std)
    return values.astype(dtype, copy=False)


def _random_bytes(n_blocks: int, block_bytes: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    # Raw 64-bit draws are ~5x faster than integers(0, 256); fixed little-endian so files match everywhere.
    n_words = -(-n_blocks * block_bytes // 8)
    raw = rng.bit_generator.random_raw(n_words).astype("<u8", copy=False).view(np.uint8)
    return raw[: n_blocks * block_bytes].reshape(n_blocks, block_bytes)


def _q4_k_blocks(n_blocks: int, *, std: float, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """Valid Q4_K blocks (``d f16 | dmin f16 | scales[12] | qs[128]``) with random 4-bit codes.

    Every sub-block scale and min is 1 and ``dmin = 7.5 d``, so a weight is ``d * (q - 7.5)``: zero mean,
    standard deviation ``std``.
    """
    d = std / _Q4_STD
    blocks = _random_bytes(n_blocks, 144, rng)
    blocks[:, 0:4] = np.array([d, 7.5 * d], dtype="<f2").view(np.uint8)
    # 6-bit scale/min pairs packed as in ggml's get_scale_min_k4: all eight scales and mins equal 1.
    blocks[:, 4:16] = np.array([1] * 8 + [0x11] * 4, dtype=np.uint8)
    return blocks


def _q6_k_blocks(n_blocks: int, *, std: float, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """Valid Q6_K blocks (``ql[128] | qh[64] | scales[16] int8 | d f16``) with random 6-bit codes."""
    d = std / _Q6_STD
    blocks = _random_bytes(n_blocks, 210, rng)
    blocks[:, 192:208] = 1
    blocks[:, 208:210] = np.array([d], dtype="<f2").view(np.uint8)
    return blocks


def _q8_0_blocks(n_blocks: int, *, std: float, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """Valid Q8_0 blocks (``d f16 | qs[32] int8``) with random 8-bit codes."""
    d = std / _Q8_STD
    blocks = _random_bytes(n_blocks, 34, rng)
    blocks[:, 0:2] = np.array([d], dtype="<f2").view(np.uint8)
    return blocks
