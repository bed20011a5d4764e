"""Random-weight, real-architecture LLaVA-1.5 GGUF pairs: a Llama text model plus a CLIP ViT mmproj.

The weights are random but the architecture, keys, vocabulary and (for the big presets) the Q4_K_M
tensor-type mix are those of real files, so llama.cpp loads them, runs them at representative speed and
produces (meaningless) text. ``tiny`` is a few MB for tests; ``1b`` and ``llava-1.5-7b`` are for benchmarks.

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
from gguf import GGUFWriter, LlamaFileType, quant_shape_to_byte_shape

from pagescribe.models.presets import (
    F16,
    F32,
    Q4_K,
    Q6_K,
    Init,
    Preset,
    TensorSpec,
    TextShape,
    VisionShape,
    get_preset,
    mmproj_tensor_plan,
    text_tensor_plan,
)
from pagescribe.models.vocab import BOS_ID, EOS_ID, UNK_ID, build_vocab

# Bump whenever the bytes written for a given preset and seed change, so cached files are rewritten.
GENERATOR_VERSION = 1

# CLIP's preprocessing constants (OpenAI CLIP ViT-L/14).
_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)

_FILE_TYPES = {"F16": LlamaFileType.MOSTLY_F16, "Q4_K_M": LlamaFileType.MOSTLY_Q4_K_M}

# Standard deviation of (q - mean) for a uniform 4-bit / 6-bit code: sqrt((2^(2b) - 1) / 12).
_Q4_STD = math.sqrt((16**2 - 1) / 12)
_Q6_STD = math.sqrt((64**2 - 1) / 12)


@dataclass(frozen=True, slots=True)
class SynthPair:
    """The two files of a synthesized model."""

    text: Path
    mmproj: Path


def chat_template() -> str:
    """The LLaVA-1.5 chat template (Jinja2) shipped with the package and written into synthesized models."""
    return resources.files("pagescribe").joinpath("templates/llava-1.5.jinja").read_text(encoding="utf-8")


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
            "llama",
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
        if t.file_type == "Q4_K_M":
            w.add_quantization_version(2)
        for key, value in {
            "context_length": t.context_length,
            "embedding_length": t.n_embd,
            "block_count": t.n_layer,
            "feed_forward_length": t.n_ff,
            "attention.head_count": t.n_head,
            "attention.head_count_kv": t.n_head_kv,
            "rope.dimension_count": t.head_dim,
            "vocab_size": t.n_vocab,
        }.items():
            w.add_uint32(f"llama.{key}", value)
        w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        w.add_float32("llama.rope.freq_base", 10000.0)
        _add_tokenizer(w, n_vocab=t.n_vocab)

    return add


def _add_tokenizer(w: GGUFWriter, *, n_vocab: int) -> None:
    vocab = build_vocab(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(list(vocab.tokens))
    w.add_token_scores(list(vocab.scores))
    w.add_token_types(list(vocab.token_types))
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_unk_token_id(UNK_ID)
    w.add_pad_token_id(UNK_ID)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_bool("tokenizer.ggml.add_space_prefix", True)
    w.add_chat_template(chat_template())


def _mmproj_kv(spec: Preset, seed: int) -> Callable[[GGUFWriter], None]:
    v: VisionShape = spec.vision

    def add(w: GGUFWriter) -> None:
        w.add_name(f"pagescribe-{spec.name}-mmproj")
        w.add_description(_description(spec, seed))
        w.add_file_type(int(LlamaFileType.MOSTLY_F16))
        w.add_bool("clip.has_text_encoder", False)
        w.add_bool("clip.has_vision_encoder", True)
        w.add_bool("clip.has_llava_projector", True)
        w.add_string("clip.projector_type", "mlp")
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
        w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
        w.add_array("clip.vision.image_mean", list(_IMAGE_MEAN))
        w.add_array("clip.vision.image_std", list(_IMAGE_STD))
        w.add_bool("clip.use_gelu", False)  # CLIP ViT-L uses quick-GELU

    return add


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
