"""Image embeddings: encode with the projector (CLIP), keep recent ones in a memory-bounded LRU, decode them
into a sequence's KV cache a bounded number of positions at a time."""

from __future__ import annotations

import ctypes
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from pagescribe.engine.lru import ByteLRU
from pagescribe.engine.native import EmbeddingBatch, NativeModel
from pagescribe.engine.tokens import ImageKey
from pagescribe.errors import EngineError

EmbeddingCache = ByteLRU[ImageKey, npt.NDArray[np.float32]]
"""Projector outputs by image hash."""


class ImageDecoder:
    """Turns an image chunk into KV state of one sequence, in steps of at most ``step`` positions."""

    def __init__(self, native: NativeModel, *, step: int, cache: EmbeddingCache) -> None:
        from llama_cpp import mtmd_cpp

        self._m = mtmd_cpp
        self.native = native
        self.step = step
        self.cache = cache
        self._batch = EmbeddingBatch(step, native.n_embd)

    def close(self) -> None:
        self._batch.close()

    def embeddings(self, key: ImageKey, chunk: Any) -> tuple[npt.NDArray[np.float32], float]:
        """The image's projected embeddings (n_tokens x n_embd) and the milliseconds spent encoding (0 if cached)."""
        cached = self.cache.get(key)
        if cached is not None:
            return cached, 0.0
        started = time.perf_counter()
        if self._m.mtmd_encode_chunk(self.native.mtmd, chunk) != 0:
            raise EngineError("libmtmd failed to encode an image")
        pointer = self._m.mtmd_get_output_embd(self.native.mtmd)
        flat = np.ctypeslib.as_array(pointer, shape=(key.n_tokens * self.native.n_embd,))
        value = flat.reshape(key.n_tokens, self.native.n_embd).copy()
        self.cache.put(key, value, value.nbytes)
        return value, (time.perf_counter() - started) * 1000

    def needs_helper(self, chunk: Any) -> bool:
        """M-RoPE (2-D positions) and non-causal images are decoded by libmtmd's helper, in one go."""
        return self.native.mrope or bool(self._m.mtmd_decode_use_non_causal(self.native.mtmd, chunk))

    def decode_part(
        self, embd: npt.NDArray[np.float32], done: int, first_pos: int, seq: int, *, limit: int | None = None
    ) -> int:
        """Decode rows ``done:done+step`` (at most ``limit``) at positions from ``first_pos + done``; returns rows
        decoded."""
        rows = embd[done : done + min(self.step, limit or self.step)]
        self._batch.fill(rows, first_pos + done, seq)
        rc = self.native.decode(self._batch.raw)
        if rc != 0:
            raise EngineError(f"llama_decode failed on image embeddings (code {rc})")
        return int(rows.shape[0])

    def decode_whole(self, chunk: Any, embd: npt.NDArray[np.float32], first_pos: int, seq: int) -> int:
        """Decode the whole image with libmtmd's helper; returns the new position."""
        new_pos = ctypes.c_int32(0)
        data = np.ascontiguousarray(embd, dtype=np.float32)
        rc = self._m.mtmd_helper_decode_image_chunk(
            self.native.mtmd, self.native.ctx, chunk, data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            first_pos, seq, self.step, ctypes.byref(new_pos), self._m.mtmd_helper_post_decode_callback(), None,
        )
        if rc != 0:
            raise EngineError(f"libmtmd failed to decode an image (code {rc})")
        return int(new_pos.value)
