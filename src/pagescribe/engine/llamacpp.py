"""The in-process llama.cpp engine: llama-cpp-python for the text model, libmtmd for images.

Pillow has already decoded and verified every image (``pagescribe.images``); libmtmd receives raw RGB pixels
through ``mtmd_bitmap_init``, so no C image parser ever sees request bytes. The prompt comes from the model's
chat template (``prompt.py``) and is tokenized part by part so that request text is never parsed for special
tokens. One request runs at a time per engine (``slots == 1``); a later scheduler batches several.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pagescribe.engine import native_log
from pagescribe.engine.base import CancelToken, Deadline
from pagescribe.engine.prompt import ChatTemplate, PromptPiece, default_chat_template, pieces_to_text
from pagescribe.engine.sampling import Sampler
from pagescribe.engine.textstream import TextStream
from pagescribe.errors import ContextOverflow, EngineError, ModelInvalid, NotReady
from pagescribe.models.files import ModelFiles
from pagescribe.models.validate import validate_pair
from pagescribe.types import FinishReason, GenerationRequest, GenerationResult, Timings, Usage


@dataclass
class _Clock:
    image_encode_ms: float = 0.0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0

    def timings(self) -> Timings:
        return Timings(self.image_encode_ms, self.prompt_ms, self.generate_ms)


class LlamaCppEngine:
    """Runs a GGUF text model plus its mmproj in this process.

    ``n_threads`` defaults to the CPUs this process may use. ``chat_template`` overrides the GGUF's own
    template (Jinja2, as in ``tokenizer.chat_template``); without either, LLaVA-1.5's format is used.
    """

    def __init__(
        self,
        files: ModelFiles,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        chat_template: str | None = None,
    ) -> None:
        self.files = files
        self.n_ctx = n_ctx
        self.n_threads = n_threads or len(os.sched_getaffinity(0))
        self.n_batch = n_batch
        self._template_override = chat_template
        self._lock = threading.Lock()
        self._llama: Any = None
        self._mtmd: Any = None
        self._template: ChatTemplate | None = None
        self._space_prefix: bool | None = None
        self._batch: Any = None

    @property
    def model_id(self) -> str:
        return self.files.model_id

    @property
    def slots(self) -> int:
        return 1

    # -- loading -------------------------------------------------------------------------------------------

    def load(self) -> None:
        """Validate both files, then load them; every failure is a ``ModelError`` naming the file."""
        text_info, _ = validate_pair(self.files.text, self.files.mmproj)
        native_log.install()
        import llama_cpp

        position = native_log.mark()
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(self.files.text),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=self.n_batch,
                n_ubatch=self.n_batch,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            reason = native_log.since(position) or str(exc)
            raise ModelInvalid(f"{self.files.text}: llama.cpp could not load the model: {reason}") from exc
        self._mtmd = self._load_projector()
        self._batch = llama_cpp.llama_batch_init(1, 0, 1)
        source = self._template_override or text_info.chat_template or default_chat_template()
        self._template = ChatTemplate(source, bos_token=self._piece(self._bos()), eos_token=self._piece(self._eos()))

    def _load_projector(self) -> Any:
        from llama_cpp import mtmd_cpp

        params = mtmd_cpp.mtmd_context_params_default()
        params.use_gpu = False
        params.print_timings = False
        params.n_threads = self.n_threads
        # a marker no request can guess; we never put it in text anyway (images are separate parts)
        params.media_marker = f"<__media_{secrets.token_hex(8)}__>".encode()
        params.warmup = True
        position = native_log.mark()
        ctx = mtmd_cpp.mtmd_init_from_file(str(self.files.mmproj).encode(), self._llama.model, params)
        if not ctx:
            reason = native_log.since(position) or "no reason given by llama.cpp"
            self.close()
            raise ModelInvalid(f"{self.files.mmproj}: libmtmd could not load the projector: {reason}")
        if not mtmd_cpp.mtmd_support_vision(ctx):
            mtmd_cpp.mtmd_free(ctx)
            self.close()
            raise ModelInvalid(f"{self.files.mmproj}: this projector has no vision encoder")
        return ctx

    def close(self) -> None:
        with self._lock:
            if self._mtmd is not None:
                from llama_cpp import mtmd_cpp

                mtmd_cpp.mtmd_free(self._mtmd)
                self._mtmd = None
            if self._batch is not None:
                import llama_cpp

                llama_cpp.llama_batch_free(self._batch)
                self._batch = None
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    # -- vocabulary ------------------------------------------------------------------------------------------

    def _vocab(self) -> Any:
        import llama_cpp

        return llama_cpp.llama_model_get_vocab(self._llama.model)

    def _bos(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_vocab_bos(self._vocab()))

    def _eos(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_vocab_eos(self._vocab()))

    def _piece_bytes(self, token: int, *, special: bool = False) -> bytes:
        import llama_cpp

        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab(), token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab(), token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def _adds_space_prefix(self) -> bool:
        """Whether the tokenizer puts a space before each separately tokenized text (SentencePiece does)."""
        if self._space_prefix is None:
            import llama_cpp

            out = (llama_cpp.llama_token * 8)()
            n = llama_cpp.llama_tokenize(self._vocab(), b"a", 1, out, 8, False, False)
            self._space_prefix = n > 0 and self._piece_bytes(out[0]).startswith(b" ")
        return self._space_prefix

    def _piece(self, token: int) -> str:
        return self._piece_bytes(token, special=True).decode("utf-8", errors="replace")

    # -- requests --------------------------------------------------------------------------------------------

    def render_prompt(self, request: GenerationRequest) -> str:
        """The exact prompt text for ``request``, each image shown as ``<__image__>``."""
        return pieces_to_text(self._pieces(request))

    def _pieces(self, request: GenerationRequest) -> list[PromptPiece]:
        if self._template is None:
            raise NotReady("the model is not loaded")
        return self._template.render(request.messages)

    def stream(
        self, request: GenerationRequest, *, cancel: CancelToken | None = None
    ) -> Iterator[str | GenerationResult]:
        with self._lock:
            if self._llama is None or self._mtmd is None:
                raise NotReady("the model is not loaded")
            yield from self._run(request, cancel or CancelToken())

    def _run(self, request: GenerationRequest, cancel: CancelToken) -> Iterator[str | GenerationResult]:
        deadline = Deadline(request.time_limit_s)
        clock = _Clock()
        with _Prompt(self, self._pieces(request)) as prompt:
            n_prompt = prompt.n_positions
            if n_prompt >= self.n_ctx:
                raise ContextOverflow(
                    f"the prompt needs {n_prompt} tokens but the context window holds {self.n_ctx}: "
                    "send fewer or smaller images or less text, or raise the context size (--ctx)"
                )
            finish = prompt.evaluate(clock, cancel, deadline)
        if finish is not None:
            yield self._result("", finish, n_prompt, 0, clock)
            return
        yield from self._generate(request, n_prompt, clock, cancel, deadline)

    def _generate(
        self, request: GenerationRequest, n_past: int, clock: _Clock, cancel: CancelToken, deadline: Deadline
    ) -> Iterator[str | GenerationResult]:
        import llama_cpp

        params = request.params
        text = TextStream(params.stop)
        vocab = self._vocab()
        n_prompt = n_past
        n_generated = 0
        finish: FinishReason = "length"
        started = time.perf_counter()
        with Sampler(self._llama.model, vocab, params) as sampler:
            while n_generated < params.max_tokens and n_past < self.n_ctx:
                if cancel.cancelled or deadline.expired:
                    finish = "cancelled" if cancel.cancelled else "time_limit"
                    break
                token = sampler.sample(self._llama.ctx)
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                n_generated += 1
                data = self._piece_bytes(token)
                if n_generated == 1 and self._adds_space_prefix():
                    data = data.removeprefix(b" ")  # SentencePiece's word-start marker, not text
                piece = text.push(data)
                if piece:
                    yield piece
                if text.stopped:
                    finish = "stop"
                    break
                self._decode_one(token, n_past)
                n_past += 1
        tail = text.finish()
        if tail:
            yield tail
        clock.generate_ms = (time.perf_counter() - started) * 1000
        yield self._result(text.text, finish, n_prompt, n_generated, clock)

    def _decode_one(self, token: int, position: int) -> None:
        import llama_cpp

        batch = self._batch
        batch.n_tokens = 1
        batch.token[0] = token
        batch.pos[0] = position
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = 0
        batch.logits[0] = True
        if llama_cpp.llama_decode(self._llama.ctx, batch) != 0:
            raise EngineError(f"llama_decode failed at position {position}")

    def _result(
        self, text: str, finish: FinishReason, n_prompt: int, n_generated: int, clock: _Clock
    ) -> GenerationResult:
        return GenerationResult(
            text=text,
            finish_reason=finish,
            usage=Usage(prompt_tokens=n_prompt, completion_tokens=n_generated),
            timings=clock.timings(),
            model=self.model_id,
        )


class _Prompt:
    """The tokenized prompt (text chunks and image chunks) of one request, freed on exit."""

    def __init__(self, engine: LlamaCppEngine, pieces: list[PromptPiece]) -> None:
        from llama_cpp import mtmd_cpp

        self._engine = engine
        self._m = mtmd_cpp
        self._bitmaps: list[Any] = []
        self._keep: list[Any] = []  # ctypes buffers that must outlive tokenization
        self.chunks = mtmd_cpp.mtmd_input_chunks_init()
        if not self.chunks:
            raise EngineError("libmtmd could not allocate input chunks")
        self._tokenize(pieces)

    def __enter__(self) -> _Prompt:
        return self

    def __exit__(self, *exc: object) -> None:
        self._m.mtmd_input_chunks_free(self.chunks)
        for bitmap in self._bitmaps:
            self._m.mtmd_bitmap_free(bitmap)

    @property
    def n_positions(self) -> int:
        return int(self._m.mtmd_helper_get_n_pos(self.chunks))

    def _tokenize(self, pieces: list[PromptPiece]) -> None:
        m = self._m
        parts = []
        pieces = _join_spacing(pieces, self._engine)
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
                self._keep.extend((data, text))
                part.text = ctypes.pointer(text)
            self._keep.append(part)
            parts.append(ctypes.pointer(part))
        array = (ctypes.POINTER(m.mtmd_input_part) * len(parts))(*parts)
        position = native_log.mark()
        rc = m.mtmd_tokenize_from_parts(self._engine._mtmd, self.chunks, array, len(parts), True)
        if rc != 0:
            raise EngineError(f"libmtmd could not tokenize the prompt (code {rc}): {native_log.since(position)}")

    def evaluate(self, clock: _Clock, cancel: CancelToken, deadline: Deadline) -> FinishReason | None:
        """Feed every chunk to the model; returns a finish reason if stopped early, else ``None``."""
        import llama_cpp

        m = self._m
        engine = self._engine
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(engine._llama.ctx), True)
        n_past = 0
        count = m.mtmd_input_chunks_size(self.chunks)
        for i in range(count):
            if cancel.cancelled or deadline.expired:
                return "cancelled" if cancel.cancelled else "time_limit"
            chunk = m.mtmd_input_chunks_get(self.chunks, i)
            new_n_past = llama_cpp.llama_pos(0)
            started = time.perf_counter()
            if m.mtmd_input_chunk_get_type(chunk) == m.MTMD_INPUT_CHUNK_TYPE_TEXT:
                rc = m.mtmd_helper_eval_chunk_single(
                    engine._mtmd, engine._llama.ctx, chunk, n_past, 0, engine.n_batch, i == count - 1,
                    ctypes.byref(new_n_past),
                )
            else:
                if m.mtmd_encode_chunk(engine._mtmd, chunk) != 0:
                    raise EngineError("libmtmd failed to encode an image")
                encoded = time.perf_counter()
                clock.image_encode_ms += (encoded - started) * 1000
                started = encoded
                rc = m.mtmd_helper_decode_image_chunk(
                    engine._mtmd, engine._llama.ctx, chunk, m.mtmd_get_output_embd(engine._mtmd), n_past, 0,
                    engine.n_batch, ctypes.byref(new_n_past), m.mtmd_helper_post_decode_callback(), None,
                )
            clock.prompt_ms += (time.perf_counter() - started) * 1000
            if rc != 0:
                raise EngineError(f"llama.cpp failed to evaluate prompt chunk {i} (code {rc})")
            n_past = new_n_past.value
        if count and m.mtmd_input_chunk_get_type(m.mtmd_input_chunks_get(self.chunks, count - 1)) != (
            m.MTMD_INPUT_CHUNK_TYPE_TEXT
        ):
            raise EngineError("the chat template must end the prompt with text after the last image")
        return None


def _join_spacing(pieces: list[PromptPiece], engine: LlamaCppEngine) -> list[PromptPiece]:
    """Drop a template space before request text when the tokenizer prefixes each part with one anyway.

    SentencePiece vocabularies (Llama 2, LLaVA-1.5) add a leading space to every separately tokenized text;
    without this, "USER: " + "Describe" would become "USER:" "▁" "▁Describe" instead of "USER:" "▁Describe".
    """
    if not engine._adds_space_prefix():
        return pieces
    out = list(pieces)
    for i in range(len(out) - 1):
        here, after = out[i], out[i + 1]
        if here.kind == "template" and after.kind == "text" and here.text.endswith(" "):
            out[i] = PromptPiece("template", here.text[:-1])
    return [p for p in out if p.kind == "image" or p.text]
