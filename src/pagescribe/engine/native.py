"""Thin, owned wrappers over the llama.cpp and libmtmd C API (through llama-cpp-python's ctypes bindings).

The engine needs what ``llama_cpp.Llama`` does not expose: several sequences in one context (``n_seq_max``), each
with a KV stream of its own, prompt prefixes copied between them (``llama_memory_seq_cp``), and batches that mix
tokens of many sequences. Everything native is created and freed here.
"""

from __future__ import annotations

import ctypes
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pagescribe.engine import native_log
from pagescribe.errors import EngineError, ModelInvalid
from pagescribe.models.files import ModelFiles

# "auto": llama.cpp turns flash attention on where the backend has it (the CPU does); measured on 2 cores, 1b preset,
# +13 % pages/min for one request at a time and +23 % with four at once (docs/architecture.md)
FLASH_ATTENTION = -1
# One KV stream per sequence (as llama-server does). A unified cache would let sequences share prefix cells without
# a copy, but every token then attends over the cells all slots keep: with 4 warm slots one page took 22 % longer
# (12.98 s against 10.65 s, 1b preset, docs/architecture.md). A prefix is copied between streams instead (``share``).
UNIFIED_KV = False
_backend_lock = threading.Lock()
_backend_ready = [False]


def _lib() -> Any:
    import llama_cpp

    with _backend_lock:
        if not _backend_ready[0]:
            native_log.install()
            llama_cpp.llama_backend_init()
            _backend_ready[0] = True
    return llama_cpp


@dataclass(frozen=True, slots=True)
class ContextShape:
    n_ctx: int  # total KV cells: n_ctx / n_seq per sequence unless ``unified``
    n_seq: int  # sequences (slots)
    n_batch: int
    n_threads: int
    unified: bool = UNIFIED_KV


class NativeModel:
    """A loaded text model + projector + one multi-sequence context. Not thread-safe: one owner thread."""

    def __init__(self, files: ModelFiles, shape: ContextShape) -> None:
        self.files = files
        self.shape = shape
        lib = _lib()
        self._lib = lib
        self.model: Any = None
        self.ctx: Any = None
        self.mtmd: Any = None
        try:
            self._load_text(lib)
            self._load_context(lib)
            self._load_projector()
        except BaseException:
            self.close()
            raise
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_embd = int(lib.llama_model_n_embd_inp(self.model))
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.memory = lib.llama_get_memory(self.ctx)
        self.space_prefix = self._detect_space_prefix()
        self.adds_bos = bool(lib.llama_vocab_get_add_bos(self.vocab))
        # Sliding-window attention (Gemma 3): cells past the window are dropped, so a long sequence no longer
        # holds its beginning and cannot lend it as a prefix.
        self.swa = int(lib.llama_model_n_swa(self.model)) > 0

    def _load_text(self, lib: Any) -> None:
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        position = native_log.mark()
        self.model = lib.llama_model_load_from_file(str(self.files.text).encode(), params)
        if not self.model:
            reason = native_log.since(position) or "no reason given by llama.cpp"
            raise ModelInvalid(f"{self.files.text}: llama.cpp could not load the model: {reason}")

    def _load_context(self, lib: Any) -> None:
        params = lib.llama_context_default_params()
        params.n_ctx = self.shape.n_ctx
        params.n_batch = self.shape.n_batch
        params.n_ubatch = self.shape.n_batch
        params.n_seq_max = self.shape.n_seq
        params.n_threads = self.shape.n_threads
        params.n_threads_batch = self.shape.n_threads
        params.kv_unified = self.shape.unified
        params.no_perf = True
        params.flash_attn_type = FLASH_ATTENTION
        position = native_log.mark()
        self.ctx = lib.llama_init_from_model(self.model, params)
        if not self.ctx:
            reason = native_log.since(position) or "out of memory?"
            raise ModelInvalid(f"{self.files.text}: llama.cpp could not create a context of {self.shape}: {reason}")

    def _load_projector(self) -> None:
        from llama_cpp import mtmd_cpp

        params = mtmd_cpp.mtmd_context_params_default()
        params.use_gpu = False
        params.print_timings = False
        params.n_threads = self.shape.n_threads
        # a marker no request can guess; request text never goes through marker parsing anyway
        params.media_marker = f"<__media_{secrets.token_hex(8)}__>".encode()
        params.warmup = True
        position = native_log.mark()
        self.mtmd = mtmd_cpp.mtmd_init_from_file(str(self.files.mmproj).encode(), self.model, params)
        if not self.mtmd:
            reason = native_log.since(position) or "no reason given by llama.cpp"
            raise ModelInvalid(f"{self.files.mmproj}: libmtmd could not load the projector: {reason}")
        if not mtmd_cpp.mtmd_support_vision(self.mtmd):
            raise ModelInvalid(f"{self.files.mmproj}: this projector has no vision encoder")
        self.mrope = bool(mtmd_cpp.mtmd_decode_use_mrope(self.mtmd))

    def close(self) -> None:
        from llama_cpp import mtmd_cpp

        if self.mtmd:
            mtmd_cpp.mtmd_free(self.mtmd)
            self.mtmd = None
        if self.ctx:
            self._lib.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            self._lib.llama_model_free(self.model)
            self.model = None

    # -- vocabulary ----------------------------------------------------------------------------------------

    def piece(self, token: int, *, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def tokenize(self, text: str) -> list[int]:
        """``text`` as tokens, special-token markers kept as plain text (the tokenizer's word-start space included,
        as for any separately tokenized text)."""
        data = text.encode("utf-8")
        size = len(data) + 8
        out = (self._lib.llama_token * size)()
        n = self._lib.llama_tokenize(self.vocab, data, len(data), out, size, False, False)
        if n < 0:
            size = -n
            out = (self._lib.llama_token * size)()
            n = self._lib.llama_tokenize(self.vocab, data, len(data), out, size, False, False)
        if n < 0:
            raise EngineError("llama.cpp could not tokenize the text to continue")
        return [int(out[i]) for i in range(n)]

    def bos_text(self) -> str:
        return self.piece(int(self._lib.llama_vocab_bos(self.vocab)), special=True).decode("utf-8", "replace")

    def eos_text(self) -> str:
        return self.piece(int(self._lib.llama_vocab_eos(self.vocab)), special=True).decode("utf-8", "replace")

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self.vocab, token))

    def _detect_space_prefix(self) -> bool:
        """Whether the tokenizer puts a space before each separately tokenized text (SentencePiece does)."""
        out = (self._lib.llama_token * 8)()
        n = self._lib.llama_tokenize(self.vocab, b"a", 1, out, 8, False, False)
        return n > 0 and self.piece(out[0]).startswith(b" ")

    # -- KV memory -----------------------------------------------------------------------------------------

    def forget(self, seq: int, from_pos: int = 0) -> None:
        """Drop sequence ``seq``'s cells from position ``from_pos`` on."""
        self._lib.llama_memory_seq_rm(self.memory, seq, from_pos, -1)

    def share(self, src: int, dst: int, upto: int) -> None:
        """Give ``dst`` (emptied first) ``src``'s cells for positions [0, upto).

        In a unified cache only cell metadata changes. With a stream per sequence llama.cpp copies whole streams
        (it refuses partial cross-stream copies), so the copy is whole and the tail is dropped after it; the data
        moves at the next decode, a memory copy far cheaper than evaluating the prefix again.
        """
        if self.shape.unified:
            self._lib.llama_memory_seq_cp(self.memory, src, dst, 0, upto)
        else:
            self._lib.llama_memory_seq_cp(self.memory, src, dst, -1, -1)
            self._lib.llama_memory_seq_rm(self.memory, dst, upto, -1)

    def save(self, seq: int) -> Any:
        """Sequence ``seq``'s KV cells as a byte buffer in host memory, for ``restore`` into any sequence."""
        size = int(self._lib.llama_state_seq_get_size(self.ctx, seq))
        state = (ctypes.c_uint8 * size)()
        if self._lib.llama_state_seq_get_data(self.ctx, state, size, seq) != size:
            raise EngineError("llama.cpp could not save a sequence's state")
        return state

    def restore(self, seq: int, state: Any) -> None:
        """Replace sequence ``seq``'s cells with a ``save``d state."""
        if self._lib.llama_state_seq_set_data(self.ctx, state, len(state), seq) == 0:
            self.forget(seq, 0)
            raise EngineError("llama.cpp could not restore a saved sequence state")

    def pruned(self, seq: int) -> bool:
        """Whether sequence ``seq`` lost its first cells (a sliding window dropped them)."""
        return self.swa and int(self._lib.llama_memory_seq_pos_min(self.memory, seq)) > 0

    def clear(self) -> None:
        self._lib.llama_memory_clear(self.memory, True)

    def logprobs(self, index: int, token: int, top: int) -> tuple[float, list[tuple[int, float]]]:
        """The log-probability of ``token`` in the logits at batch ``index`` (their softmax), and the ``top`` most
        likely tokens there with theirs, best first."""
        pointer = self._lib.llama_get_logits_ith(self.ctx, index)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).astype(np.float64)
        peak = float(logits.max())
        norm = peak + float(np.log(np.exp(logits - peak).sum()))
        best: list[tuple[int, float]] = []
        if top > 0:
            ids = np.argpartition(-logits, min(top, self.n_vocab - 1))[:top]
            ids = ids[np.argsort(-logits[ids], kind="stable")]
            best = [(int(i), float(logits[i]) - norm) for i in ids]
        return float(logits[token]) - norm, best

    def decode(self, batch: Any) -> int:
        """``llama_decode``: 0 ok, 1 no room in the KV cache, negative an error."""
        return int(self._lib.llama_decode(self.ctx, batch))


class TokenBatch:
    """A reusable ``llama_batch`` of tokens from any number of sequences."""

    def __init__(self, capacity: int) -> None:
        self._lib = _lib()
        self.capacity = capacity
        self.raw = self._lib.llama_batch_init(capacity, 0, 1)
        self.n = 0

    def clear(self) -> None:
        self.n = 0
        self.raw.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, *, logits: bool) -> int:
        """Append one token; returns its index in the batch (where its logits will be)."""
        i = self.n
        if i >= self.capacity:
            raise EngineError("token batch overflow")
        raw = self.raw
        raw.token[i] = token
        raw.pos[i] = pos
        raw.n_seq_id[i] = 1
        raw.seq_id[i][0] = seq
        raw.logits[i] = logits
        self.n = i + 1
        raw.n_tokens = self.n
        return i

    def close(self) -> None:
        if self.raw is not None:
            self._lib.llama_batch_free(self.raw)
            self.raw = None


class EmbeddingBatch:
    """A reusable ``llama_batch`` of input embeddings (an image's projected patches) for one sequence."""

    def __init__(self, capacity: int, n_embd: int) -> None:
        self._lib = _lib()
        self.capacity = capacity
        self.n_embd = n_embd
        self.raw = self._lib.llama_batch_init(capacity, n_embd, 1)

    def fill(self, embeddings: npt.NDArray[np.float32], first_pos: int, seq: int) -> None:
        n = embeddings.shape[0]
        if n > self.capacity:
            raise EngineError("embedding batch overflow")
        data = np.ascontiguousarray(embeddings, dtype=np.float32)
        ctypes.memmove(self.raw.embd, data.ctypes.data, data.nbytes)
        for i in range(n):
            self.raw.pos[i] = first_pos + i
            self.raw.n_seq_id[i] = 1
            self.raw.seq_id[i][0] = seq
            self.raw.logits[i] = False
        self.raw.n_tokens = n

    def close(self) -> None:
        if self.raw is not None:
            self._lib.llama_batch_free(self.raw)
            self.raw = None
