"""Validation of every family's pair before llama.cpp sees it: a broken file is a one-line error and exit status 1
(`pagescribe model inspect`), for the faults llama.cpp would crash on or report only to its log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from gguf import GGUFReader, GGUFValueType

from familymodels import INNER, NEW_FAMILIES, WIDENED, WRONG_TYPE, family_model
from ggufedit import KeyEdit, rewrite_gguf
from pagescribe.cli import main
from pagescribe.models.families import FAMILIES, family_of_files


def inspect(*paths: Path) -> Result:
    return CliRunner().invoke(main, ["model", "inspect", *map(str, paths)])


def errors(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) * 2 // 3])
    return dst


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_a_good_pair_passes_and_names_its_family(family: str) -> None:
    files = family_model(family)
    result = inspect(files.text, files.mmproj)
    assert result.exit_code == 0, result.output
    assert f"family: {family} ({FAMILIES[family].title})" in result.output
    assert family_of_files(files).name == family


@pytest.mark.parametrize("family", NEW_FAMILIES)
@pytest.mark.parametrize("which", ["text", "mmproj"])
def test_a_truncated_file_is_one_error_line(family: str, which: str, tmp_path: Path) -> None:
    files = family_model(family)
    source = files.text if which == "text" else files.mmproj
    bad = truncated(source, tmp_path / source.name)
    pair = (bad, files.mmproj) if which == "text" else (files.text, bad)
    result = inspect(*pair)
    assert result.exit_code == 1
    [line] = errors(result)
    assert line.startswith(f"error: {bad}: truncated: tensor data ends at byte")


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_a_projector_of_the_wrong_width_is_one_error_line(family: str, tmp_path: Path) -> None:
    files = family_model(family)
    keys: dict[str, KeyEdit] = {"clip.vision.projection_dim": (72, GGUFValueType.UINT32)}
    bad = rewrite_gguf(GGUFReader(files.mmproj), tmp_path / "mmproj.gguf", keys=keys, tensors=WIDENED[family])
    result = inspect(files.text, bad)
    assert result.exit_code == 1
    [line] = errors(result)
    assert line == (
        f"error: {bad}: projector output width 72 does not match the text model's embedding width 64 "
        f"({files.text}); the two files are not a pair"
    )


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_a_projector_matrix_of_the_wrong_inner_width_is_one_error_line(family: str, tmp_path: Path) -> None:
    files = family_model(family)
    name, array, problem = INNER[family]
    bad = rewrite_gguf(GGUFReader(files.mmproj), tmp_path / "mmproj.gguf", tensors={name: array})
    result = inspect(files.text, bad)
    assert result.exit_code == 1
    [line] = errors(result)
    assert line.startswith(f"error: {bad}: {problem}")


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_a_key_of_the_wrong_type_is_one_error_line(family: str, tmp_path: Path) -> None:
    files = family_model(family)
    key, edit = WRONG_TYPE[family]
    bad = rewrite_gguf(GGUFReader(files.mmproj), tmp_path / "mmproj.gguf", keys={key: edit})
    result = inspect(files.text, bad)
    assert result.exit_code == 1
    [line] = errors(result)
    assert edit is not None
    assert line == f"error: {bad}: key {key} has type {edit[1].name}, llama.cpp requires UINT32"


@pytest.mark.parametrize(
    ("family", "keys", "problem"),
    [
        ("qwen2.5-vl", {"qwen2vl.rope.dimension_sections": None}, "key qwen2vl.rope.dimension_sections must be"),
        ("qwen2.5-vl", {"qwen2vl.rope.dimension_sections": ([8, 8, 8, 0], GGUFValueType.ARRAY)},
         "M-RoPE sections [8, 8, 8, 0] do not fit attention heads of width 16"),
        ("gemma-3", {"gemma3.attention.key_length": (16, GGUFValueType.UINT32)},
         "attention key and value widths differ"),
        ("lightonocr", {"qwen3.attention.head_count_kv": (3, GGUFValueType.UINT32)}, "attention heads 4 / 3"),
        ("granite-docling", {"llama.feed_forward_length": (100, GGUFValueType.UINT32)},
         "tensor blk.0.ffn_gate.weight has shape [64, 128], expected [64, 100]"),
    ],
)
def test_a_text_model_whose_keys_and_tensors_disagree_is_one_error_line(
    family: str, keys: dict[str, KeyEdit], problem: str, tmp_path: Path
) -> None:
    files = family_model(family)
    bad = rewrite_gguf(GGUFReader(files.text), tmp_path / "text.gguf", keys=keys)
    result = inspect(bad, files.mmproj)
    assert result.exit_code == 1
    [line] = errors(result)
    assert line.startswith(f"error: {bad}: {problem}")


def test_a_gemma_text_norm_of_the_wrong_width_is_caught(tmp_path: Path) -> None:
    files = family_model("gemma-3")
    bad = rewrite_gguf(GGUFReader(files.text), tmp_path / "text.gguf",
                       tensors={"blk.1.attn_q_norm.weight": np.ones(16, np.float32)})
    [line] = errors(inspect(bad, files.mmproj))
    assert line == f"error: {bad}: tensor blk.1.attn_q_norm.weight has shape [16], expected [32]"
