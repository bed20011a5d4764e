"""`pagescribe describe` as a user runs it: a real process, the real engine, the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from PIL import Image, ImageDraw

from ggufedit import f16, rewrite_gguf
from pagescribe.models.files import ModelFiles


def run_describe(*args: str | Path, model: ModelFiles | None = None) -> subprocess.CompletedProcess[str]:
    model_args = ["--model", str(model.text), "--mmproj", str(model.mmproj)] if model else []
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pagescribe.cli",
            "describe",
            *model_args,
            "--max-tokens",
            "12",
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def draw(path: Path, color: str, label: str) -> Path:
    img = Image.new("RGB", (400, 300), color)
    ImageDraw.Draw(img).text((30, 30), label, fill="black")
    img.save(path)
    return path


def test_describe_prints_the_same_text_twice_and_other_text_for_another_image(
    tiny_model: ModelFiles, tmp_path: Path
) -> None:
    invoice = draw(tmp_path / "invoice.png", "white", "Invoice")
    chart = draw(tmp_path / "chart.png", "orange", "Chart")
    first = run_describe(invoice, model=tiny_model)
    second = run_describe(invoice, model=tiny_model)
    other = run_describe(chart, model=tiny_model)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith(f"== {invoice} (page 1/1) ==\n")
    body = first.stdout.split("\n", 1)[1].strip()
    assert body
    assert other.stdout.split("\n", 1)[1].strip() != body


def test_a_three_page_pdf_gives_three_json_records(tiny_model: ModelFiles, tmp_path: Path) -> None:
    pages = [Image.new("RGB", (600, 800), c) for c in ("white", "lightblue", "lightyellow")]
    for n, p in enumerate(pages, 1):
        ImageDraw.Draw(p).text((40, 40), f"Page {n}", fill="black")
    pdf = tmp_path / "three.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:])
    done = run_describe(pdf, "--json", model=tiny_model)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["page"], r["page_count"]) for r in records] == [(1, 3), (2, 3), (3, 3)]
    for r in records:
        assert r["text"] and r["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 12
        assert r["source"] == str(pdf) and r["model"] == "pagescribe-tiny-F16"
        assert set(r["timings"]) == {"image_encode_ms", "prompt_ms", "generate_ms"}


def test_a_file_that_is_not_an_image_is_a_clear_error_and_the_rest_still_run(
    tiny_model: ModelFiles, tmp_path: Path
) -> None:
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not a picture")
    good = draw(tmp_path / "good.png", "white", "ok")
    done = run_describe(bogus, good, model=tiny_model)
    assert done.returncode == 1
    assert f"{bogus}:" in done.stderr and "Traceback" not in done.stderr
    assert f"== {good} (page 1/1) ==" in done.stdout


def test_missing_model_explains_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = draw(tmp_path / "p.png", "white", "x")
    done = run_describe(image, "--model", tmp_path / "nope.gguf")
    assert done.returncode == 1
    assert "nope.gguf: no such file or directory" in done.stderr
    assert "pagescribe model synth --preset tiny" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_text_model_is_a_clear_error_not_a_crash(
    tiny_model: ModelFiles, tmp_path: Path, damage: str
) -> None:
    data = tiny_model.text.read_bytes()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00" * 4096 + data[4096:])
    image = draw(tmp_path / "p.png", "white", "x")
    done = run_describe(image, "--model", broken, "--mmproj", tiny_model.mmproj)
    assert done.returncode == 1, done.stderr  # 1 = a reported error; a crash would be negative (a signal)
    assert str(broken) in done.stderr and "Traceback" not in done.stderr


def test_a_projector_of_the_wrong_width_is_a_clear_error(tiny_model: ModelFiles, tmp_path: Path) -> None:
    wide = rewrite_gguf(
        GGUFReader(tiny_model.mmproj),
        tmp_path / "mmproj-wide.gguf",
        tensors={
            "mm.0.weight": f16(128, 64),
            "mm.0.bias": np.zeros(128, np.float32),
            "mm.2.weight": f16(128, 128),
            "mm.2.bias": np.zeros(128, np.float32),
        },
    )
    done = run_describe(draw(tmp_path / "p.png", "white", "x"), "--model", tiny_model.text, "--mmproj", wide)
    assert done.returncode == 1
    assert "projector output width 128 does not match the text model's embedding width 64" in done.stderr


def test_a_text_model_with_a_wrong_tensor_shape_is_a_clear_error(
    tiny_model: ModelFiles, tmp_path: Path
) -> None:
    bad = rewrite_gguf(
        GGUFReader(tiny_model.text), tmp_path / "bad.gguf", tensors={"blk.0.attn_q.weight": f16(48, 64)}
    )
    done = run_describe(draw(tmp_path / "p.png", "white", "x"), "--model", bad, "--mmproj", tiny_model.mmproj)
    assert done.returncode == 1
    assert "tensor blk.0.attn_q.weight has shape [64, 48], expected [64, 64]" in done.stderr


def test_a_projector_that_would_abort_llama_cpp_is_refused_before_loading(
    tiny_model: ModelFiles, tmp_path: Path
) -> None:
    # llama.cpp itself dies with SIGABRT on this file (GGML_ASSERT in the projector warm-up)
    bad = rewrite_gguf(
        GGUFReader(tiny_model.mmproj), tmp_path / "mmproj.gguf", tensors={"mm.0.weight": f16(64, 72)}
    )
    done = run_describe(draw(tmp_path / "p.png", "white", "x"), "--model", tiny_model.text, "--mmproj", bad)
    assert done.returncode == 1, done.stderr
    assert f"{bad}: tensor mm.0.weight has shape [72, 64], expected [64, 64]" in done.stderr
