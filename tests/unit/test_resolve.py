"""Finding the GGUF pair from what a user passes as --model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pagescribe.engine.options import EngineOptions
from pagescribe.errors import ModelInvalid, ModelNotFound
from pagescribe.models import resolve
from pagescribe.models.files import ModelFiles
from pagescribe.models.hub import _choose_files
from pagescribe.models.resolve import resolve_model


@pytest.fixture
def model_dir(tiny_model: ModelFiles, tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    shutil.copy(tiny_model.text, directory / "weights.gguf")
    shutil.copy(
        tiny_model.mmproj, directory / "vision.gguf"
    )  # no "mmproj" in the name: found by architecture
    return directory


def test_a_directory_is_scanned_for_the_text_model_and_its_projector(model_dir: Path) -> None:
    files = resolve_model(str(model_dir))
    assert files == ModelFiles(model_dir / "weights.gguf", model_dir / "vision.gguf", "weights")


def test_a_text_file_finds_its_projector_beside_it(model_dir: Path) -> None:
    assert resolve_model(model_dir / "weights.gguf").mmproj == model_dir / "vision.gguf"


def test_an_explicit_mmproj_wins(model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-mmproj.gguf"
    shutil.copy(model_dir / "vision.gguf", other)
    assert resolve_model(model_dir / "weights.gguf", mmproj=other).mmproj == other


def test_a_manifest_names_the_files_and_the_model_id(model_dir: Path) -> None:
    shutil.copy(model_dir / "weights.gguf", model_dir / "weights-q8.gguf")
    (model_dir / "pagescribe-model.json").write_text(
        json.dumps({"text": "weights-q8.gguf", "mmproj": "vision.gguf", "model_id": "llava-test"})
    )
    assert resolve_model(model_dir) == ModelFiles(
        model_dir / "weights-q8.gguf", model_dir / "vision.gguf", "llava-test"
    )


def test_a_broken_manifest_says_what_it_expects(model_dir: Path) -> None:
    (model_dir / "pagescribe-model.json").write_text("{not json")
    with pytest.raises(ModelInvalid, match="expected JSON with 'text' and 'mmproj'"):
        resolve_model(model_dir)


def test_two_text_models_in_a_directory_is_ambiguous(model_dir: Path) -> None:
    shutil.copy(model_dir / "weights.gguf", model_dir / "weights-2.gguf")
    with pytest.raises(ModelNotFound, match="several text-model GGUF files"):
        resolve_model(model_dir)


def test_a_directory_without_a_projector_says_so(model_dir: Path) -> None:
    (model_dir / "vision.gguf").unlink()
    with pytest.raises(ModelNotFound, match="expected one mmproj"):
        resolve_model(model_dir)


def test_the_environment_and_then_opt_ml_model_are_the_defaults(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAGESCRIBE_MODEL", str(model_dir))
    assert resolve_model(EngineOptions().model).text == model_dir / "weights.gguf"
    monkeypatch.delenv("PAGESCRIBE_MODEL")
    monkeypatch.setattr(resolve, "SAGEMAKER_MODEL_DIR", model_dir)
    assert resolve_model(None).text == model_dir / "weights.gguf"
    monkeypatch.setattr(resolve, "SAGEMAKER_MODEL_DIR", tmp_path / "absent")
    with pytest.raises(ModelNotFound, match=r"No model given.*pagescribe model synth --preset tiny"):
        resolve_model(None)


def test_a_hub_repo_id_without_network_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound, match=r"could not download from the model hub.*--model DIR"):
        resolve_model("someorg/llava-1.5-7b-gguf:Q4_K_M")


def test_hub_file_choice_picks_the_quant_and_an_f16_projector() -> None:
    files = ["README.md", "llava-Q4_K_M.gguf", "llava-Q8_0.gguf", "mmproj-q8.gguf", "mmproj-f16.gguf"]
    assert _choose_files("o/n:Q4_K_M", files, "Q4_K_M") == ["llava-Q4_K_M.gguf", "mmproj-f16.gguf"]
    with pytest.raises(ModelNotFound, match="Add :QUANT"):
        _choose_files("o/n", files, "")


def test_the_manifest_written_by_model_package_is_read_back(model_dir: Path) -> None:
    from pagescribe.aws.package import MANIFEST_NAME, build_manifest

    files = sorted(model_dir.iterdir())
    (model_dir / MANIFEST_NAME).write_text(json.dumps(build_manifest(model_dir, files)))
    shutil.copy(model_dir / "weights.gguf", model_dir / "zz-other-weights.gguf")  # a scan alone would be ambiguous
    assert resolve_model(model_dir).text == model_dir / "weights.gguf"
