"""The tiny pair in the real llama.cpp; files llama.cpp would die on are stopped by validation first."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFReader, GGUFValueType, GGUFWriter

from pagescribe.errors import ModelInvalid
from pagescribe.models.files import ModelFiles
from pagescribe.models.synth import chat_template
from pagescribe.models.validate import validate_pair

pytestmark = pytest.mark.integration
llama_cpp = pytest.importorskip("llama_cpp")

# Loads the text model, then the mmproj through libmtmd (which runs a warm-up image encode), in a child
# process: an abort there must not take pytest down with it.
LOAD_MMPROJ = """
import sys
import llama_cpp
from llama_cpp import mtmd_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, verbose=False)
params = mtmd_cpp.mtmd_context_params_default()
params.use_gpu = False
params.n_threads = 1
params.print_timings = False
ctx = mtmd_cpp.mtmd_init_from_file(sys.argv[2].encode(), llm.model, params)
if ctx is None:
    sys.exit(3)
print("vision", mtmd_cpp.mtmd_support_vision(ctx))
mtmd_cpp.mtmd_free(ctx)
llm.close()
"""


def load_in_child(text: Path, mmproj: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOAD_MMPROJ, str(text), str(mmproj)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def edit_mmproj(
    src: Path, dst: Path, *, keys: Mapping[str, tuple[Any, GGUFValueType]], tensors: Mapping[str, Any]
) -> Path:
    """Copy an mmproj through gguf-py with some keys and tensors replaced; everything else stays as it was."""
    reader = GGUFReader(src)
    writer = GGUFWriter(dst, "clip")
    for name, field in reader.fields.items():
        if not name.startswith("GGUF.") and name != "general.architecture" and name not in keys:
            sub_type = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
            writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub_type)
    for name, (value, vtype) in keys.items():
        writer.add_key_value(name, value, vtype)
    for t in reader.tensors:
        if t.name in tensors:
            writer.add_tensor(t.name, tensors[t.name])
        else:
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


@pytest.fixture
def llm(tiny_model: ModelFiles) -> Any:
    model = llama_cpp.Llama(model_path=str(tiny_model.text), n_ctx=512, n_threads=1, verbose=False)
    yield model
    model.close()


def test_tiny_text_model_loads(llm: Any) -> None:
    assert (llm.n_vocab(), llm.n_embd(), llm.n_ctx()) == (32000, 64, 512)
    assert llm.metadata["tokenizer.chat_template"] == chat_template()


def test_tiny_mmproj_loads_with_the_text_model(tiny_model: ModelFiles) -> None:
    result = load_in_child(tiny_model.text, tiny_model.mmproj)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "vision True"


def test_english_merges_into_fewer_tokens_and_round_trips(llm: Any) -> None:
    text = "The process flow starts with the input data, then the model writes a short summary of each page."
    tokens = llm.tokenize(text.encode())
    assert tokens[0] == llm.token_bos()
    assert len(tokens) - 1 < len(text.encode()) / 2
    assert llm.detokenize(tokens) == text.encode()


def test_any_text_round_trips_through_byte_fallback(llm: Any) -> None:
    text = "Café — naïve 日本語 ✓\n\tTabelle: 42 % <s></s> <__media__>"
    tokens = llm.tokenize(text.encode())
    assert any(3 <= t <= 258 for t in tokens)  # <0x..> byte tokens carry what no piece covers
    assert llm.token_bos() not in tokens[1:] and llm.token_eos() not in tokens  # special text is plain text
    assert llm.detokenize(tokens) == text.encode()


@pytest.mark.parametrize(
    ("keys", "tensors", "problem"),
    [
        # mm.0 expects 72 input features but the ViT produces 64: GGML_ASSERT(ggml_can_mul_mat(a, b)).
        ({}, {"mm.0.weight": np.full((64, 72), 0.01, np.float16)}, "tensor mm.0.weight has shape [72, 64]"),
        # clip.cpp reads the image size with a typed accessor: GGML_ASSERT on the stored type.
        (
            {"clip.vision.image_size": (56, GGUFValueType.INT32)},
            {},
            "key clip.vision.image_size has type INT32",
        ),
    ],
)
def test_an_mmproj_that_aborts_llama_cpp_is_rejected_before_it_gets_there(
    tmp_path: Path, tiny_model: ModelFiles, keys: Mapping[str, Any], tensors: Mapping[str, Any], problem: str
) -> None:
    bad = edit_mmproj(tiny_model.mmproj, tmp_path / "mmproj-bad.gguf", keys=keys, tensors=tensors)
    crashed = load_in_child(tiny_model.text, bad)
    assert crashed.returncode == -signal.SIGABRT, crashed.stderr[-2000:]
    with pytest.raises(ModelInvalid, match=re.escape(f"{bad}: {problem}")):
        validate_pair(tiny_model.text, bad)
