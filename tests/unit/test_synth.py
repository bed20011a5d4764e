"""The model synthesizer: reproducible files, the real layouts, the vocabulary, the chat template, the CLI."""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jinja2
import numpy as np
import numpy.typing as npt
import pytest
from click.testing import CliRunner
from gguf import GGMLQuantizationType, GGUFReader, TokenType
from gguf.quants import dequantize

from pagescribe.cli.model import model_group
from pagescribe.models import synth
from pagescribe.models.presets import TensorSpec, tensor_plan
from pagescribe.models.synth import chat_template, synthesize
from pagescribe.models.validate import validate_pair
from pagescribe.models.vocab import SPACE, build_vocab


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(pair: synth.SynthPair) -> tuple[str, str]:
    return sha256(pair.text), sha256(pair.mmproj)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = synthesize("tiny", tmp_path / "a", seed=7)
    second = synthesize("tiny", tmp_path / "b", seed=7)
    assert first.text.name == "pagescribe-tiny-F16.gguf"
    assert first.mmproj.name == "mmproj-pagescribe-tiny-f16.gguf"
    assert digests(first) == digests(second)


def test_different_seed_gives_different_weights(tmp_path: Path) -> None:
    a = synthesize("tiny", tmp_path / "a", seed=0)
    b = synthesize("tiny", tmp_path / "b", seed=1)
    assert sha256(a.text) != sha256(b.text)
    assert sha256(a.mmproj) != sha256(b.mmproj)
    # Same layout, different values.
    ta, tb = GGUFReader(a.mmproj).tensors, GGUFReader(b.mmproj).tensors
    assert [t.name for t in ta] == [t.name for t in tb]
    assert not np.array_equal(ta[0].data, tb[0].data)


def test_tiny_is_small_and_fast(tmp_path: Path) -> None:
    synthesize("tiny", tmp_path / "warm", seed=0)  # imports and the vocabulary are built once per process
    started = time.perf_counter()
    pair = synthesize("tiny", tmp_path / "timed", seed=3)
    elapsed = time.perf_counter() - started
    total = pair.text.stat().st_size + pair.mmproj.stat().st_size
    assert elapsed < 1.0
    assert total < 8_000_000


def test_tiny_pair_is_valid_and_carries_the_keys_llama_cpp_needs(tmp_path: Path) -> None:
    pair = synthesize("tiny", tmp_path, seed=0)
    text, mmproj = validate_pair(pair.text, pair.mmproj)
    assert (text.architecture, text.n_embd, text.n_layer, text.n_vocab) == ("llama", 64, 2, 32000)
    assert text.chat_template == chat_template()
    assert (mmproj.projector_type, mmproj.n_embd_out, mmproj.image_size, mmproj.patch_size) == (
        "mlp",
        64,
        56,
        14,
    )
    reader = GGUFReader(pair.text)
    fields = reader.fields
    assert fields["tokenizer.ggml.model"].contents() == "llama"
    assert fields["general.file_type"].contents() == 1  # F16
    assert "general.quantization_version" not in fields
    assert "output.weight" not in {t.name for t in reader.tensors}  # tied to token_embd
    assert "random weights" in fields["general.description"].contents()


def test_existing_files_are_reused_and_force_rewrites(tmp_path: Path) -> None:
    pair = synthesize("tiny", tmp_path, seed=0)
    inode = pair.text.stat().st_ino
    assert synthesize("tiny", tmp_path, seed=0).text.stat().st_ino == inode
    assert synthesize("tiny", tmp_path, seed=0, overwrite=True).text.stat().st_ino != inode


def test_damaged_or_other_seed_files_are_rewritten(tmp_path: Path) -> None:
    pair = synthesize("tiny", tmp_path, seed=0)
    expected = digests(pair)
    with open(pair.text, "r+b") as f:
        f.truncate(1000)
    assert digests(synthesize("tiny", tmp_path, seed=0)) == expected
    assert digests(synthesize("tiny", tmp_path, seed=5)) != expected
    assert not [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def _synth_in_child(out_dir: str) -> tuple[str, str]:
    return digests(synthesize("tiny", Path(out_dir), seed=0))


def test_concurrent_callers_all_get_complete_identical_files(tmp_path: Path) -> None:
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_synth_in_child, [str(tmp_path)] * 3))
    assert len(set(results)) == 1
    validate_pair(tmp_path / "pagescribe-tiny-F16.gguf", tmp_path / "mmproj-pagescribe-tiny-f16.gguf")


def test_unknown_preset_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny"):
        synthesize("13b", tmp_path)


def _type_counts(specs: tuple[TensorSpec, ...]) -> Counter[str]:
    return Counter(s.ggml_type.name for s in specs)


def test_7b_plan_matches_llama2_7b_q4_k_m_and_the_llava_mmproj() -> None:
    plan = tensor_plan("llava-1.5-7b")
    assert _type_counts(plan.text) == {"F32": 65, "Q4_K": 193, "Q6_K": 33}
    data_bytes = sum(s.nbytes for s in plan.text)
    n_params = sum(s.n_elements for s in plan.text)
    # llama.cpp reports a llama-2-7b Q4_K_M as "3.80 GiB (4.84 BPW)".
    assert data_bytes == 4_080_263_168
    assert round(data_bytes / 2**30, 2) == 3.80
    assert round(data_bytes * 8 / n_params, 2) == 4.84
    by_name = {s.name: s for s in plan.text}
    assert by_name["output.weight"].ggml_type == GGMLQuantizationType.Q6_K
    assert by_name["blk.0.attn_v.weight"].ggml_type == GGMLQuantizationType.Q6_K
    assert by_name["blk.4.attn_v.weight"].ggml_type == GGMLQuantizationType.Q4_K
    assert by_name["token_embd.weight"].ggml_type == GGMLQuantizationType.Q4_K
    # The published LLaVA-1.5-7B mmproj-model-f16.gguf: 377 tensors, 624,434,368 bytes including its header.
    assert len(plan.mmproj) == 377
    assert sum(s.nbytes for s in plan.mmproj) == 624_412_672
    assert {s.shape for s in plan.mmproj if s.name == "mm.2.weight"} == {(4096, 4096)}


def test_1b_plan_has_the_q4_k_m_mix_and_size() -> None:
    plan = tensor_plan("1b")
    # 22 layers: attn_v and ffn_down get Q6_K in layers 0-1, 4, 7, 10, 13, 16 and 19-21.
    assert _type_counts(plan.text) == {"F32": 45, "Q4_K": 135, "Q6_K": 21}
    assert sum(s.nbytes for s in plan.text) == 667_078_656
    assert {s.shape for s in plan.mmproj if s.name == "mm.2.weight"} == {(2048, 2048)}


@pytest.mark.parametrize(
    ("ggml_type", "make"),
    [(GGMLQuantizationType.Q4_K, synth._q4_k_blocks), (GGMLQuantizationType.Q6_K, synth._q6_k_blocks)],
)
def test_random_quant_blocks_dequantize_to_the_target_distribution(
    ggml_type: GGMLQuantizationType, make: Callable[..., npt.NDArray[np.uint8]]
) -> None:
    blocks = make(2048, std=0.02, rng=np.random.default_rng(0))
    weights = dequantize(blocks, ggml_type)
    assert weights.size == 2048 * 256
    assert np.isfinite(weights).all()
    assert abs(float(weights.mean())) < 0.002
    assert float(weights.std()) == pytest.approx(0.02, rel=0.05)


def test_vocabulary_layout_and_reachability() -> None:
    vocab = build_vocab()
    assert len(vocab) == len(set(vocab.tokens)) == 32000
    assert vocab.tokens[:3] == ("<unk>", "<s>", "</s>")
    assert vocab.token_types[:3] == (TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL)
    assert (
        vocab.tokens[3] == "<0x00>" and vocab.tokens[3 + 0x0A] == "<0x0A>" and vocab.tokens[258] == "<0xFF>"
    )
    assert set(vocab.token_types[3:259]) == {TokenType.BYTE}
    normal = set(vocab.tokens[259:])
    for piece in normal:
        # llama.cpp only builds a piece by merging two adjacent pieces, and never across a word boundary.
        assert SPACE not in piece[1:], piece
        assert len(piece) == 1 or piece[:-1] in normal, piece
    assert {SPACE + "the", SPACE + "document", SPACE + "The", "table"} <= normal
    assert build_vocab() == vocab


def _render(**env_options: bool) -> str:
    env = jinja2.Environment(**env_options)  # type: ignore[arg-type]
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "<IMG>"}, {"type": "text", "text": "What is it?"}],
        },
        {"role": "assistant", "content": "A chart."},
        {"role": "user", "content": "And the axis?"},
    ]
    template = env.from_string(chat_template())
    return template.render(messages=messages, add_generation_prompt=True, bos_token="<s>", eos_token="</s>")


def test_chat_template_renders_the_llava_1_5_conversation_format() -> None:
    expected = "Be brief.\n\nUSER: <IMG>What is it?\nASSISTANT: A chart.</s>\nUSER: And the axis?\nASSISTANT:"
    assert _render() == expected
    # llama-cpp-python renders with trim_blocks / lstrip_blocks; the output must not change.
    assert _render(trim_blocks=True, lstrip_blocks=True) == expected


def test_cli_synth_prints_both_paths_and_sizes(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        model_group, ["synth", "--preset", "tiny", "--out", str(tmp_path), "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(tmp_path / "pagescribe-tiny-F16.gguf")) and lines[0].endswith("MB")
    assert lines[1].startswith(str(tmp_path / "mmproj-pagescribe-tiny-f16.gguf")) and lines[1].endswith("kB")
    again = CliRunner().invoke(model_group, ["synth", "--out", str(tmp_path), "--seed", "2", "--force"])
    assert again.exit_code == 0 and again.stdout == result.stdout


def test_cli_synth_rejects_an_unknown_preset(tmp_path: Path) -> None:
    result = CliRunner().invoke(model_group, ["synth", "--preset", "70b", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "llava-1.5-7b" in result.output
