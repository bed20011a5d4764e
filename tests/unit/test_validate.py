"""GGUF validation: each way a model file can be broken is a ModelError naming the file and the problem."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from gguf import GGUFReader, GGUFValueType

from ggufedit import RNG, KeyEdit, f16, rewrite_gguf
from pagescribe.cli.model import model_group
from pagescribe.errors import ModelInvalid, ModelNotFound
from pagescribe.models.files import ModelFiles
from pagescribe.models.validate import (
    gguf_architecture,
    inspect_mmproj,
    inspect_text_model,
    is_gguf,
    validate_pair,
)


@pytest.fixture(scope="module")
def text_reader(tiny_model: ModelFiles) -> GGUFReader:
    return GGUFReader(tiny_model.text)  # parsing the 32000-token vocabulary takes a second: do it once


@pytest.fixture
def mmproj_reader(tiny_model: ModelFiles) -> GGUFReader:
    return GGUFReader(tiny_model.mmproj)


def copy_to(tmp_path: Path, src: Path) -> Path:
    return Path(shutil.copy(src, tmp_path / src.name))


def test_synthesized_pair_passes(tiny_model: ModelFiles) -> None:
    text, mmproj = validate_pair(tiny_model.text, tiny_model.mmproj)
    assert (text.architecture, text.n_embd, text.n_layer, text.n_vocab, text.file_type) == (
        "llama",
        64,
        2,
        32000,
        "F16",
    )
    assert text.chat_template is not None and "ASSISTANT:" in text.chat_template
    assert (mmproj.projector_type, mmproj.n_embd_out) == ("mlp", 64)


def test_faithful_copy_passes(tmp_path: Path, text_reader: GGUFReader, tiny_model: ModelFiles) -> None:
    # Guards the helper the other tests use: without edits it must reproduce the file exactly.
    copy = rewrite_gguf(text_reader, tmp_path / "copy.gguf")
    assert copy.read_bytes() == tiny_model.text.read_bytes()


def test_missing_file(tmp_path: Path, tiny_model: ModelFiles) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelNotFound, match=re.escape(f"{missing}: file not found")):
        validate_pair(missing, tiny_model.mmproj)
    with pytest.raises(ModelNotFound, match=re.escape(str(missing))):
        validate_pair(tiny_model.text, missing)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.touch()
    with pytest.raises(ModelInvalid, match=re.escape(f"{empty}: the file is empty")):
        inspect_text_model(empty)


def test_garbage_header(tmp_path: Path, tiny_model: ModelFiles) -> None:
    path = copy_to(tmp_path, tiny_model.text)
    with open(path, "r+b") as f:
        f.write(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelInvalid, match=re.escape(f"{path}: not a GGUF file (bad magic)")):
        inspect_text_model(path)


def test_truncated_tensor_data(tmp_path: Path, tiny_model: ModelFiles) -> None:
    path = copy_to(tmp_path, tiny_model.text)
    full_size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(full_size // 2)
    message = (
        f"{path}: truncated: tensor data ends at byte {full_size:,} but the file has {full_size // 2:,} bytes"
    )
    with pytest.raises(ModelInvalid, match=re.escape(message)):
        inspect_text_model(path)


def test_truncated_header(tmp_path: Path, tiny_model: ModelFiles) -> None:
    path = copy_to(tmp_path, tiny_model.text)
    with open(path, "r+b") as f:
        f.truncate(5000)  # inside the vocabulary
    with pytest.raises(ModelInvalid, match=re.escape(f"{path}: unreadable GGUF header")):
        inspect_text_model(path)


def test_mmproj_of_the_wrong_width(tmp_path: Path, tiny_model: ModelFiles, mmproj_reader: GGUFReader) -> None:
    wide = rewrite_gguf(
        mmproj_reader,
        tmp_path / "mmproj-wide.gguf",
        tensors={
            "mm.0.weight": f16(128, 64),
            "mm.0.bias": np.zeros(128, np.float32),
            "mm.2.weight": f16(128, 128),
            "mm.2.bias": np.zeros(128, np.float32),
        },
    )
    assert inspect_mmproj(wide).n_embd_out == 128  # a valid file on its own, just not for this text model
    message = f"{wide}: projector output width 128 does not match the text model's embedding width 64"
    with pytest.raises(ModelInvalid, match=re.escape(message)):
        validate_pair(tiny_model.text, wide)


def test_text_model_with_a_wrong_tensor_shape(tmp_path: Path, text_reader: GGUFReader) -> None:
    path = rewrite_gguf(text_reader, tmp_path / "bad.gguf", tensors={"blk.0.attn_q.weight": f16(48, 64)})
    message = f"{path}: tensor blk.0.attn_q.weight has shape [64, 48], expected [64, 64]"
    with pytest.raises(ModelInvalid, match=re.escape(message)):
        inspect_text_model(path)


def test_mmproj_with_a_wrong_projector_inner_width(tmp_path: Path, mmproj_reader: GGUFReader) -> None:
    # llama.cpp aborts on this (GGML_ASSERT in its warm-up encode): mm.0 takes 72 features, the ViT gives 64.
    path = rewrite_gguf(mmproj_reader, tmp_path / "mmproj.gguf", tensors={"mm.0.weight": f16(64, 72)})
    message = f"{path}: tensor mm.0.weight has shape [72, 64], expected [64, 64]"
    with pytest.raises(ModelInvalid, match=re.escape(message)):
        inspect_mmproj(path)


def test_mmproj_missing_a_vision_block_tensor(tmp_path: Path, mmproj_reader: GGUFReader) -> None:
    path = rewrite_gguf(mmproj_reader, tmp_path / "mmproj.gguf", tensors={"v.blk.1.attn_k.weight": None})
    with pytest.raises(ModelInvalid, match=re.escape(f"{path}: missing tensor v.blk.1.attn_k.weight")):
        inspect_mmproj(path)


def test_text_model_given_as_mmproj(tiny_model: ModelFiles) -> None:
    message = f"{tiny_model.text}: general.architecture is 'llama', expected 'clip'"
    with pytest.raises(ModelInvalid, match=re.escape(message)):
        validate_pair(tiny_model.text, tiny_model.text)


def test_mmproj_given_as_text_model(tiny_model: ModelFiles) -> None:
    message = f"{tiny_model.mmproj}: this is a multimodal projector (mmproj) file, not a text model"
    with pytest.raises(ModelInvalid, match=re.escape(message)):
        validate_pair(tiny_model.mmproj, tiny_model.mmproj)


def test_mmproj_key_of_the_wrong_type(tmp_path: Path, mmproj_reader: GGUFReader) -> None:
    # llama.cpp's typed key accessors GGML_ASSERT on the type: an INT32 image size would abort the process.
    path = rewrite_gguf(
        mmproj_reader, tmp_path / "mmproj.gguf", keys={"clip.vision.image_size": (56, GGUFValueType.INT32)}
    )
    with pytest.raises(ModelInvalid, match=re.escape(f"{path}: key clip.vision.image_size has type INT32")):
        inspect_mmproj(path)


@pytest.mark.parametrize(
    ("key", "edit", "problem"),
    [
        ("clip.vision.image_mean", None, "key clip.vision.image_mean must be an array of 3 floats"),
        ("clip.projector_type", None, "missing the projector type"),
        ("clip.has_vision_encoder", (False, GGUFValueType.BOOL), "has no vision encoder"),
        (
            "clip.vision.image_size",
            (50, GGUFValueType.UINT32),
            "image size 50 is not a multiple of the patch size 14",
        ),
    ],
)
def test_mmproj_missing_or_bad_vision_settings(
    tmp_path: Path, mmproj_reader: GGUFReader, key: str, edit: KeyEdit, problem: str
) -> None:
    path = rewrite_gguf(mmproj_reader, tmp_path / "mmproj.gguf", keys={key: edit})
    with pytest.raises(ModelInvalid, match=re.escape(f"{path}: {problem}")):
        inspect_mmproj(path)


def test_other_text_architectures_get_the_generic_checks(tmp_path: Path, text_reader: GGUFReader) -> None:
    renamed: dict[str, KeyEdit] = {"general.architecture": ("qwen2", GGUFValueType.STRING)}
    for name, field in text_reader.fields.items():
        if name.startswith("llama."):
            renamed[name] = None
            renamed["qwen2." + name.removeprefix("llama.")] = (field.contents(), field.types[0])
    path = rewrite_gguf(text_reader, tmp_path / "qwen2.gguf", keys=renamed)
    info = inspect_text_model(path)
    assert (info.architecture, info.n_embd, info.n_layer, info.context_length) == ("qwen2", 64, 2, 4096)


def test_other_projector_types_skip_the_width_check(
    tmp_path: Path, tiny_model: ModelFiles, mmproj_reader: GGUFReader
) -> None:
    path = rewrite_gguf(
        mmproj_reader,
        tmp_path / "mmproj.gguf",
        keys={"clip.projector_type": ("resampler", GGUFValueType.STRING)},
    )
    _, info = validate_pair(tiny_model.text, path)
    assert (info.projector_type, info.n_embd_out) == ("resampler", None)


def test_cheap_probes(tmp_path: Path, tiny_model: ModelFiles) -> None:
    not_gguf = tmp_path / "page.png"
    not_gguf.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert is_gguf(tiny_model.text) and is_gguf(tiny_model.mmproj)
    assert not is_gguf(not_gguf) and not is_gguf(tmp_path / "missing.gguf") and not is_gguf(tmp_path)
    assert (gguf_architecture(tiny_model.text), gguf_architecture(tiny_model.mmproj)) == ("llama", "clip")
    assert gguf_architecture(not_gguf) is None and gguf_architecture(tmp_path / "missing.gguf") is None


def test_cli_inspect_reports_a_good_pair(tiny_model: ModelFiles) -> None:
    result = CliRunner().invoke(model_group, ["inspect", str(tiny_model.text), str(tiny_model.mmproj)])
    assert result.exit_code == 0, result.output
    assert "text model: llama 'pagescribe-tiny', file type F16" in result.stdout
    assert "mmproj: projector mlp, output width 64" in result.stdout
    assert "pair: ok" in result.stdout


def test_cli_inspect_names_the_broken_file_and_fails(tmp_path: Path, tiny_model: ModelFiles) -> None:
    path = copy_to(tmp_path, tiny_model.mmproj)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 1000)
    result = CliRunner().invoke(model_group, ["inspect", str(tiny_model.text), str(path)])
    assert result.exit_code == 1
    assert f"error: {path}: truncated" in result.stderr
    assert "text model: llama" in result.stdout  # the good file is still reported
