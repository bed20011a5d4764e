"""Model families as data: detection, image sizing, prompts and layouts, post-processing, presets at the published
shapes, and the `model list` / `model pull` commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from familymodels import NEW_FAMILIES, TINY, family_model
from pagescribe.cli import main
from pagescribe.engine.options import EngineOptions
from pagescribe.errors import ModelInvalid
from pagescribe.images import image_from_pil
from pagescribe.models import hub
from pagescribe.models.families import FAMILIES, detect_family, family_for, fit_within, get_family
from pagescribe.models.postprocess import page_text
from pagescribe.models.presets import get_preset, tensor_plan
from pagescribe.models.synth import synthesize
from pagescribe.models.validate import validate_pair
from pagescribe.pipeline.render import RenderedPage
from pagescribe.pipeline.transcribe import build_request
from pagescribe.types import ImagePart, SamplingParams, TextPart


def test_each_family_is_detected_from_its_text_architecture_and_projector() -> None:
    for family in FAMILIES.values():
        for arch in family.text_archs:
            assert detect_family(arch, family.projector) is family
    assert detect_family("llama", "idefics3") is FAMILIES["granite-docling"]
    assert detect_family("qwen2vl", "mlp") is None  # the pieces of two families make neither
    assert family_for("qwen2", "pixtral").name == "llava-1.5"  # unknown pairs: LLaVA's conventions
    assert family_for("llama", "mlp", override="gemma-3").name == "gemma-3"
    with pytest.raises(ModelInvalid, match=r"unknown model family 'nope'; choose one of: llava-1\.5, qwen2\.5-vl"):
        get_family("nope")


def test_family_is_an_engine_option_checked_against_the_known_names() -> None:
    assert EngineOptions(family="granite-docling").family == "granite-docling"
    assert EngineOptions().family is None
    with pytest.raises(ValueError, match="unknown model family 'qwen'"):
        EngineOptions(family="qwen")
    result = CliRunner().invoke(main, ["describe", "page.png", "--family", "qwen"])
    assert result.exit_code == 2


def test_the_image_policy_bounds_what_a_request_may_ask() -> None:
    qwen = FAMILIES["qwen2.5-vl"].image
    assert (qwen.max_side(None), qwen.max_side(700), qwen.max_side(10), qwen.max_side(99999)) == (1344, 700, 56, 3584)
    assert fit_within(1275, 1650, 1344) == (1039, 1344) and fit_within(600, 400, 1344) == (600, 400)


def test_letter_page_tokens_at_the_full_size_shapes() -> None:
    tokens = {name: fam.letter_page_tokens() for name, fam in FAMILIES.items()}
    # 24x24 CLIP patches; 37x48 merged 28-px patches; 4x4 tiles + overview of 64; 16x16 pooled; 43x55 at 1540 px
    assert tokens == {"llava-1.5": 576, "qwen2.5-vl": 1776, "granite-docling": 1088, "gemma-3": 256,
                      "lightonocr": 2365}


@pytest.mark.parametrize(
    ("preset", "text_mb", "mmproj_mb"),
    # the published files: Qwen2.5-VL-3B-Instruct Q4_K_M 1.93 GB + mmproj f16 1.34 GB; gemma-3-4b-it Q4_K_M 2.49 GB +
    # mmproj-model-f16 851 MB; granite-docling-258M Q8_0 and LightOnOCR-1B-1025 Q8_0 with their f16 projectors
    [("qwen2.5-vl-3b", 1923, 1338), ("gemma-3-4b", 2483, 851), ("granite-docling-258m", 174, 190),
     ("lightonocr-1b", 633, 819)],
)
def test_full_size_presets_have_the_published_layout(preset: str, text_mb: int, mmproj_mb: int) -> None:
    plan = tensor_plan(preset)
    assert sum(s.nbytes for s in plan.text) // 10**6 == text_mb
    assert sum(s.nbytes for s in plan.mmproj) // 10**6 == mmproj_mb
    by_name = {s.name: s for s in plan.text}
    assert "output.weight" not in by_name  # all four tie the output to the token embedding
    kind = get_preset(preset).text.file_type
    assert by_name["token_embd.weight"].ggml_type.name == ("Q6_K" if kind == "Q4_K_M" else "Q8_0")


def test_tiny_family_presets_are_small_fast_and_valid(tmp_path: Path) -> None:
    for family in NEW_FAMILIES:
        started = time.perf_counter()
        pair = synthesize(TINY[family], tmp_path / family)
        assert time.perf_counter() - started < 1.0
        assert pair.text.stat().st_size + pair.mmproj.stat().st_size < 3_000_000
        text, mmproj = validate_pair(pair.text, pair.mmproj)
        assert detect_family(text.architecture, mmproj.projector_type) is FAMILIES[family]
        assert text.chat_template == FAMILIES[family].chat_template()


def page(width: int = 850, height: int = 1100) -> RenderedPage:
    from PIL import Image

    image = image_from_pil(Image.new("RGB", (width, height), "white"))
    return RenderedPage(source="p.png", page=1, page_count=1, image=image, text_layer=None, render_ms=0.0)


def test_requests_follow_the_family_layout() -> None:
    params = SamplingParams(max_tokens=4)
    for name, family in FAMILIES.items():
        request = build_request(family.document_prompt(), page(), params=params, image_first=family.image_first)
        parts = request.messages[0].parts
        if name == "llava-1.5":  # the shared instruction first: every page after the first reuses its cells
            assert isinstance(parts[0], TextPart) and isinstance(parts[1], ImagePart)
        elif name == "lightonocr":  # the page alone
            assert len(parts) == 1 and isinstance(parts[0], ImagePart)
        else:
            assert isinstance(parts[0], ImagePart) and isinstance(parts[1], TextPart) and parts[1].text
    assert FAMILIES["granite-docling"].document_prompt().text == "Convert this page to docling."
    assert FAMILIES["lightonocr"].sampling() == SamplingParams(max_tokens=4096, temperature=0.2, top_p=0.9, seed=0)


def test_doctags_become_markdown_and_other_answers_stay_as_they_are() -> None:
    doctags = "<doctag><title><loc_1><loc_2><loc_3><loc_4>Report</title><text>Total: 12.</text></doctag>"
    assert page_text(doctags) == "# Report\n\nTotal: 12."  # DocTags from any server are recognised
    assert page_text("  plain words <b>", "none") == "  plain words <b>"
    assert page_text("<text>no closing tag", "doctags") == "<text>no closing tag"  # nothing lost to docling


def test_model_list_names_every_family_its_files_and_its_page_cost() -> None:
    result = CliRunner().invoke(main, ["model", "list"])
    assert result.exit_code == 0
    for family in FAMILIES.values():
        assert f"pagescribe model pull {family.published[0].spec}" in result.output
        assert f"image tokens per letter page at the default resolution: {family.letter_page_tokens():,}" in (
            result.output
        )
    assert "llava-1.5 (the default)" in result.output


def test_model_pull_offline_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    result = CliRunner().invoke(main, ["model", "pull", "granite-docling"])
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("Error: ggml-org/granite-docling-258M-GGUF:Q8_0: could not download from the model hub "
                           "and it is not in the local cache")
    assert "Without network access: run `pagescribe model pull ggml-org/granite-docling-258M-GGUF:Q8_0`" in line
    assert "pass --model DIR" in line


def test_model_pull_offline_uses_what_an_earlier_pull_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    files = family_model("granite-docling")
    calls: list[dict[str, Any]] = []

    def offline(*args: Any, **kwargs: Any) -> None:
        raise OSError("offline mode is enabled")

    def cached(repo_id: str, **kwargs: Any) -> str:
        calls.append(kwargs)
        return str(files.text.parent)

    monkeypatch.setattr("huggingface_hub.HfApi.list_repo_files", offline)
    monkeypatch.setattr("huggingface_hub.snapshot_download", cached)
    result = CliRunner().invoke(main, ["model", "pull", "granite-docling"])
    assert result.exit_code == 0, result.output
    assert str(files.text) in result.output and str(files.mmproj) in result.output
    assert calls == [{"local_files_only": True}]
    assert hub.download_from_hub("ggml-org/granite-docling-258M-GGUF:Q8_0") == files.text.parent


def test_model_pull_refuses_what_is_neither_a_family_nor_a_repository() -> None:
    result = CliRunner().invoke(main, ["model", "pull", "qwen"])
    assert result.exit_code == 2 and "neither a model family" in result.output


@pytest.mark.parametrize("command", ["describe", "convert", "serve"])
def test_every_command_takes_the_family_flag(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "--family NAME" in result.output and "PAGESCRIBE_FAMILY" in result.output
