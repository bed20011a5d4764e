"""A request's prompt as model input: text tokens and image chunks, each with a key for prefix matching.

A key is a token id (one position) or ``ImageKey`` (an image's hash, which of its chunks it is, and the positions
it spans). Two prompts whose keys agree up to a point have the same KV state up to that point, which is what the
prefix cache reuses. An image can be several chunks (idefics3 cuts a page into tiles plus an overview, all with the
image's id), so a chunk's key counts the chunks of the same image before it in the prompt.

With M-RoPE (Qwen2.5-VL) an image spans fewer positions than it has embeddings: it takes ``n_tokens`` KV cells
but advances the position by ``n_pos``. ``n_cells`` counts the cells a prompt fills, ``n_positions`` how far the
position goes.

The beginning of an answer to continue (a ``prefix`` piece) becomes the very tokens the engine generated for that
text when it still remembers them (``AnswerTokens``): the same text tokenized afresh could split differently, and
then neither the prefix cache nor greedy decoding would pick up where the cut answer stopped.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pagescribe.engine import native_log
from pagescribe.engine.lru import ByteLRU
from pagescribe.engine.native import NativeModel
from pagescribe.engine.prompt import PromptPiece
from pagescribe.errors import EngineError


@dataclass(frozen=True, slots=True)
class ImageKey:
    digest: str
    n_pos: int
    n_tokens: int
    chunk_index: int = -1  # where it is in its own prompt's chunks; not part of equality
    part: int = 0  # chunks of the same image before this one in the prompt (tiles)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageKey) and (self.digest, self.n_pos, self.part) == (
            other.digest, other.n_pos, other.part
        )

    def __hash__(self) -> int:
        return hash((self.digest, self.n_pos, self.part))


Key = int | ImageKey


def span(key: Key) -> int:
    """Positions a key occupies in the sequence."""
    return key.n_pos if isinstance(key, ImageKey) else 1


def cells(key: Key) -> int:
    """KV cells a key fills (an image's embeddings; one for a token)."""
    return key.n_tokens if isinstance(key, ImageKey) else 1


def common_prefix(a: Sequence[Key], b: Sequence[Key]) -> int:
    """How many leading keys ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class AnswerTokens:
    """The tokens behind answers the engine cut short, by their text, so that continuing one replays its tokens."""

    def __init__(self, max_bytes: int = 4 * 1024 * 1024) -> None:
        self._lru: ByteLRU[str, tuple[int, ...]] = ByteLRU(max_bytes)

    def remember(self, text: str, tokens: Sequence[int]) -> None:
        if text and tokens:
            self._lru.put(text, tuple(tokens), 4 * len(text) + 8 * len(tokens))

    def get(self, text: str) -> tuple[int, ...] | None:
        return self._lru.get(text)


class TokenizedPrompt:
    """The libmtmd chunks of one prompt and its key list; frees the native objects on ``close``.

    A trailing ``prefix`` piece (an answer to continue) is not given to libmtmd: its tokens, remembered in
    ``answers`` or tokenized here, end the key list as ``prefix_tokens``.
    """

    def __init__(self, native: NativeModel, pieces: list[PromptPiece], *, answers: AnswerTokens | None = None) -> None:
        from llama_cpp import mtmd_cpp

        self._m = mtmd_cpp
        self._bitmaps: list[Any] = []
        pieces = _join_spacing(pieces, native.space_prefix)
        prefix = pieces.pop() if pieces and pieces[-1].kind == "prefix" else None
        self.prefix_text = "" if prefix is None else prefix.text
        self.chunks = mtmd_cpp.mtmd_input_chunks_init()
        if not self.chunks:
            raise EngineError("libmtmd could not allocate input chunks")
        try:
            self._tokenize(native, pieces)
            self.keys = self._keys()
            known = answers.get(self.prefix_text) if answers is not None else None
            self.prefix_tokens = list(known) if known is not None else native.tokenize(self.prefix_text)
            self.keys.extend(self.prefix_tokens)
        except BaseException:
            self.close()
            raise

    @property
    def continues(self) -> bool:
        """Whether the prompt ends with the beginning of the answer (the model goes on from inside a text)."""
        return bool(self.prefix_tokens)

    @property
    def n_positions(self) -> int:
        return sum(span(k) for k in self.keys)

    @property
    def n_cells(self) -> int:
        """KV cells the prompt fills: its tokens, each image's embeddings counted."""
        return sum(cells(k) for k in self.keys)

    @property
    def n_image_tokens(self) -> int:
        return sum(k.n_tokens for k in self.keys if isinstance(k, ImageKey))

    def chunk(self, index: int) -> Any:
        return self._m.mtmd_input_chunks_get(self.chunks, index)

    def close(self) -> None:
        if self.chunks:
            self._m.mtmd_input_chunks_free(self.chunks)
            self.chunks = None
        for bitmap in self._bitmaps:
            self._m.mtmd_bitmap_free(bitmap)
        self._bitmaps.clear()

    def _tokenize(self, native: NativeModel, pieces: list[PromptPiece]) -> None:
        m = self._m
        keep: list[Any] = []  # ctypes objects that must outlive the call
        parts = []
        for piece in pieces:
            part = m.mtmd_input_part()
            if piece.kind == "image":
                assert piece.image is not None
                pixels = (ctypes.c_uint8 * len(piece.image.rgb)).from_buffer_copy(piece.image.rgb)
                bitmap = m.mtmd_bitmap_init(piece.image.width, piece.image.height, pixels)
                if not bitmap:
                    raise EngineError("libmtmd could not take the image")
                m.mtmd_bitmap_set_id(bitmap, piece.image.sha256.encode())
                self._bitmaps.append(bitmap)
                part.bitmap = bitmap
            else:
                data = piece.text.encode("utf-8")
                text = m.mtmd_input_text(data, len(data), False, piece.kind == "template")
                keep.extend((data, text))
                part.text = ctypes.pointer(text)
            keep.append(part)
            parts.append(ctypes.pointer(part))
        array = (ctypes.POINTER(m.mtmd_input_part) * len(parts))(*parts)
        position = native_log.mark()
        rc = m.mtmd_tokenize_from_parts(native.mtmd, self.chunks, array, len(parts), True)
        if rc != 0:
            raise EngineError(f"libmtmd could not tokenize the prompt (code {rc}): {native_log.since(position)}")

    def _keys(self) -> list[Key]:
        m = self._m
        keys: list[Key] = []
        parts: dict[str, int] = {}
        for i in range(m.mtmd_input_chunks_size(self.chunks)):
            chunk = m.mtmd_input_chunks_get(self.chunks, i)
            if m.mtmd_input_chunk_get_type(chunk) == m.MTMD_INPUT_CHUNK_TYPE_TEXT:
                n = ctypes.c_size_t()
                tokens = m.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
                keys.extend(int(tokens[j]) for j in range(n.value))
            else:
                digest = (m.mtmd_input_chunk_get_id(chunk) or b"").decode()
                part = parts[digest] = parts.get(digest, -1) + 1
                keys.append(ImageKey(
                    digest, int(m.mtmd_input_chunk_get_n_pos(chunk)), int(m.mtmd_input_chunk_get_n_tokens(chunk)), i,
                    part,
                ))
        if not keys or isinstance(keys[-1], ImageKey):
            raise EngineError("the chat template must end the prompt with text after the last image")
        return keys


def _join_spacing(pieces: list[PromptPiece], space_prefix: bool) -> list[PromptPiece]:
    """Drop a template space before request text when the tokenizer prefixes each part with one anyway.

    SentencePiece vocabularies (Llama 2, LLaVA-1.5) add a leading space to every separately tokenized text;
    without this, "USER: " + "Describe" would become "USER:" "▁" "▁Describe" instead of "USER:" "▁Describe".
    """
    if not space_prefix:
        return pieces
    out = list(pieces)
    for i in range(len(out) - 1):
        here, after = out[i], out[i + 1]
        if here.kind == "template" and after.kind in ("text", "prefix") and here.text.endswith(" "):
            out[i] = PromptPiece("template", here.text[:-1])
    return [p for p in out if p.kind in ("image", "prefix") or p.text]
