"""Tensor plans: the names, shapes and ggml types of every tensor a synthesized GGUF holds, per architecture.

Names and shapes follow what llama.cpp's loaders require (``src/models/<arch>.cpp`` for the text models,
``tools/mtmd/clip.cpp`` ``load_tensors`` and the graph builders in ``tools/mtmd/models/`` for the projectors),
and the types follow ``convert_hf_to_gguf.py`` (1-D tensors and position embeddings f32, matrices f16) and
``llama-quant.cpp``'s ``llama_tensor_get_type`` for the quantized text files.
"""

from __future__ import annotations

from collections.abc import Callable

from gguf import GGMLQuantizationType

from pagescribe.models.shapes import F16, F32, Q4_K, Q6_K, Q8_0, TensorSpec, TextShape, VisionShape, bias, norm


def _use_more_bits(i_layer: int, n_layer: int) -> bool:
    # llama.cpp's llama_tensor_get_type gives these layers of attn_v / ffn_down Q6_K under Q4_K_M.
    return i_layer < n_layer // 8 or i_layer >= 7 * n_layer // 8 or (i_layer - n_layer // 8) % 3 == 2


def _matrix_type(shape: TextShape, role: str, i_layer: int = 0) -> GGMLQuantizationType:
    """The ggml type llama.cpp's quantizer picks for a weight matrix under the preset's file type."""
    if shape.file_type == "F16":
        return F16
    if shape.file_type == "Q8_0":
        return Q8_0
    # A tied token embedding doubles as the output matrix, so it is quantized as the output is.
    if role == "output" or (role == "token_embd" and shape.tied_output):
        return Q6_K
    if role in ("attn_v", "ffn_down") and _use_more_bits(i_layer, shape.n_layer):
        return Q6_K
    return Q4_K


def text_tensor_plan(shape: TextShape) -> tuple[TensorSpec, ...]:
    """Tensors of the text model in the order ``convert_hf_to_gguf.py`` writes them (llama, qwen2vl, qwen3,
    gemma3 layouts)."""
    e, f, q, kv, hd = shape.n_embd, shape.n_ff, shape.q_dim, shape.kv_dim, shape.head_dim

    def matrix(name: str, dims: tuple[int, int], role: str, i: int = 0) -> TensorSpec:
        return TensorSpec(name, dims, _matrix_type(shape, role, i))

    specs = [matrix("token_embd.weight", (shape.n_vocab, e), "token_embd")]
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        specs += [
            norm(p + "attn_norm.weight", e),
            matrix(p + "attn_q.weight", (q, e), "attn_q", i),
            matrix(p + "attn_k.weight", (kv, e), "attn_k", i),
            matrix(p + "attn_v.weight", (kv, e), "attn_v", i),
        ]
        if shape.arch == "qwen2vl":  # Qwen2's attention has q/k/v biases
            specs += [bias(p + "attn_q.bias", q), bias(p + "attn_k.bias", kv), bias(p + "attn_v.bias", kv)]
        specs.append(matrix(p + "attn_output.weight", (e, q), "attn_output", i))
        if shape.arch in ("qwen3", "gemma3"):  # per-head RMS norms of q and k
            specs += [norm(p + "attn_q_norm.weight", hd), norm(p + "attn_k_norm.weight", hd)]
        if shape.arch == "gemma3":
            specs.append(norm(p + "post_attention_norm.weight", e))
        specs += [
            norm(p + "ffn_norm.weight", e),
            matrix(p + "ffn_gate.weight", (f, e), "ffn_gate", i),
            matrix(p + "ffn_up.weight", (f, e), "ffn_up", i),
            matrix(p + "ffn_down.weight", (e, f), "ffn_down", i),
        ]
        if shape.arch == "gemma3":
            specs.append(norm(p + "post_ffw_norm.weight", e))
    specs.append(norm("output_norm.weight", e))
    if not shape.tied_output:
        specs.append(matrix("output.weight", (shape.n_vocab, e), "output"))
    return tuple(specs)


# -- projectors --------------------------------------------------------------------------------------------------


def _linear(name: str, out: int, inp: int, *, with_bias: bool = True) -> list[TensorSpec]:
    specs = [TensorSpec(name + ".weight", (out, inp), F16)]
    return [*specs, bias(name + ".bias", out)] if with_bias else specs


def _layer_norm(name: str, width: int) -> list[TensorSpec]:
    return [norm(name + ".weight", width), bias(name + ".bias", width)]


def _attention(block: str, width: int, *, with_bias: bool = True) -> list[TensorSpec]:
    """A ViT block's q, k, v and output projections (``v.blk.N.attn_*``)."""
    return [spec for proj in ("attn_q", "attn_k", "attn_v", "attn_out")
            for spec in _linear(block + proj, width, width, with_bias=with_bias)]


def _llava_mlp(v: VisionShape, t: int) -> tuple[TensorSpec, ...]:
    """LLaVA-1.5 in the layout of llama.cpp's legacy ``convert_image_encoder_to_gguf.py``: its FFN names hold HF
    ``fc1`` in ``ffn_down`` (E -> F) and ``fc2`` in ``ffn_up``; clip.cpp notices and swaps them."""
    e, f, p = v.n_embd, v.n_ff, v.patch_size
    specs = [
        *_linear("mm.0", t, e),
        *_linear("mm.2", t, t),
        TensorSpec("v.class_embd", (e,), F32),
        TensorSpec("v.patch_embd.weight", (e, 3, p, p), F16),  # the legacy converter keeps conv kernels f16
        TensorSpec("v.position_embd.weight", (v.n_positions, e), F16),
        *_layer_norm("v.pre_ln", e),
    ]
    for i in range(v.n_layer):
        b = f"v.blk.{i}."
        specs += [*_attention(b, e), *_layer_norm(b + "ln1", e), *_linear(b + "ffn_down", f, e)]
        specs += [*_linear(b + "ffn_up", e, f), *_layer_norm(b + "ln2", e)]
    return tuple(specs)


def _qwen25vl(v: VisionShape, t: int) -> tuple[TensorSpec, ...]:
    """Qwen2.5-VL (``conversion/qwenvl.py``): the Conv3D patch embedding split into two Conv2D kernels, RMS norms,
    SwiGLU blocks with biases, then the merger: ``ln_q`` (v.post_ln) and a 2-layer MLP over 2x2 patches."""
    e, f, p, m = v.n_embd, v.n_ff, v.patch_size, v.n_embd * v.merge**2
    specs = [
        TensorSpec("v.patch_embd.weight", (e, 3, p, p), F16),
        TensorSpec("v.patch_embd.weight.1", (e, 3, p, p), F16),
    ]
    for i in range(v.n_layer):
        b = f"v.blk.{i}."
        specs += [norm(b + "ln1.weight", e), *_attention(b, e), norm(b + "ln2.weight", e)]
        specs += [*_linear(b + "ffn_gate", f, e), *_linear(b + "ffn_up", f, e), *_linear(b + "ffn_down", e, f)]
    return (*specs, norm("v.post_ln.weight", e), *_linear("mm.0", m, m), *_linear("mm.2", t, m))


def _siglip(v: VisionShape) -> list[TensorSpec]:
    """A SigLIP tower (idefics3, Gemma 3): learned positions, LayerNorms, GELU MLP, a post LayerNorm. The
    converters force the ``embeddings.*`` tensors to f32."""
    e, f, p = v.n_embd, v.n_ff, v.patch_size
    specs = [
        TensorSpec("v.patch_embd.weight", (e, 3, p, p), F32),
        bias("v.patch_embd.bias", e),
        TensorSpec("v.position_embd.weight", (v.n_patches, e), F32),
    ]
    for i in range(v.n_layer):
        b = f"v.blk.{i}."
        specs += [*_attention(b, e), *_layer_norm(b + "ln1", e), *_linear(b + "ffn_up", f, e)]
        specs += [*_linear(b + "ffn_down", e, f), *_layer_norm(b + "ln2", e)]
    return [*specs, *_layer_norm("v.post_ln", e)]


def _idefics3(v: VisionShape, t: int) -> tuple[TensorSpec, ...]:
    """Idefics3 / granite-docling (``conversion/smolvlm.py``): SigLIP, pixel shuffle, one linear layer."""
    return (*_siglip(v), TensorSpec("mm.model.fc.weight", (t, v.n_embd * v.merge**2), F16))


def _gemma3(v: VisionShape, t: int) -> tuple[TensorSpec, ...]:
    """Gemma 3 (``conversion/gemma.py``): SigLIP, 4x4 average pooling, an RMS norm and a projection (E x T)."""
    return (
        *_siglip(v),
        TensorSpec("mm.input_projection.weight", (v.n_embd, t), F16),
        norm("mm.soft_emb_norm.weight", v.n_embd),
    )


def _lightonocr(v: VisionShape, t: int) -> tuple[TensorSpec, ...]:
    """LightOnOCR (``conversion/lighton_ocr.py`` on ``llava.py``): a Pixtral tower (2-D RoPE, RMS norms, SwiGLU,
    no biases), then an RMS norm, the 2x2 patch merger and a 2-layer GELU MLP without biases."""
    e, f, p = v.n_embd, v.n_ff, v.patch_size
    specs = [TensorSpec("v.patch_embd.weight", (e, 3, p, p), F16), norm("v.pre_ln.weight", e)]
    for i in range(v.n_layer):
        b = f"v.blk.{i}."
        specs += [*_attention(b, e, with_bias=False), norm(b + "ln1.weight", e), norm(b + "ln2.weight", e)]
        for name, dims in (("ffn_gate", (f, e)), ("ffn_up", (f, e)), ("ffn_down", (e, f))):
            specs += _linear(b + name, *dims, with_bias=False)
    return (
        *specs,
        norm("mm.input_norm.weight", e),
        TensorSpec("mm.patch_merger.weight", (e, e * v.merge**2), F16),
        *_linear("mm.1", t, e, with_bias=False),
        *_linear("mm.2", t, t, with_bias=False),
    )


_PROJECTORS: dict[str, Callable[[VisionShape, int], tuple[TensorSpec, ...]]] = {
    "mlp": _llava_mlp,
    "qwen2.5vl_merger": _qwen25vl,
    "idefics3": _idefics3,
    "gemma3": _gemma3,
    "lightonocr": _lightonocr,
}


def mmproj_tensor_plan(vision: VisionShape, *, n_embd_text: int) -> tuple[TensorSpec, ...]:
    """Tensors of the projector (mmproj) file for ``vision.projector``, its output ``n_embd_text`` wide."""
    return _PROJECTORS[vision.projector](vision, n_embd_text)
