"""The in-process llama.cpp engine: a GGUF text model plus its mmproj, serving ``slots`` requests at once.

Pillow has already decoded and verified every image (``pagescribe.images``); libmtmd receives raw RGB pixels
through ``mtmd_bitmap_init``, so no C image parser ever sees request bytes. The prompt comes from the model's
chat template (``prompt.py``) and is tokenized part by part so that request text is never parsed for special
tokens (``tokens.py``). Requests run through one continuous-batching loop (``scheduler.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

from pagescribe.engine.base import CancelToken
from pagescribe.engine.native import ContextShape, NativeModel
from pagescribe.engine.prompt import ChatTemplate, PromptPiece, default_chat_template, pieces_to_text
from pagescribe.engine.scheduler import BatchScheduler
from pagescribe.errors import NotReady
from pagescribe.models.files import ModelFiles
from pagescribe.models.validate import validate_pair
from pagescribe.types import GenerationRequest, GenerationResult

DEFAULT_IMAGE_CACHE_MB = 256
DEFAULT_PREFIX_CACHE_MB = 512


class LlamaCppEngine:
    """Runs a GGUF text model plus its mmproj in this process.

    ``n_ctx`` is the context window of one request (each of the ``slots`` gets that much; the KV cache is shared,
    so a prompt prefix common to several requests is stored once). ``n_threads`` defaults to the CPUs this process
    may use. ``chat_template`` overrides the GGUF's own template (Jinja2, as in ``tokenizer.chat_template``);
    without either, LLaVA-1.5's format is used. ``image_cache_mb`` bounds the memory for reused image embeddings,
    ``prefix_cache_mb`` the host memory for shared prompt prefixes saved when no slot holds them any more.
    """

    def __init__(
        self,
        files: ModelFiles,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        slots: int = 1,
        chat_template: str | None = None,
        image_cache_mb: int = DEFAULT_IMAGE_CACHE_MB,
        prefix_cache_mb: int = DEFAULT_PREFIX_CACHE_MB,
    ) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.files = files
        self.n_ctx = n_ctx
        self.n_threads = n_threads or len(os.sched_getaffinity(0))
        self.n_batch = n_batch
        self.n_slots = slots
        self.image_cache_mb = image_cache_mb
        self.prefix_cache_mb = prefix_cache_mb
        self._template_override = chat_template
        self._template: ChatTemplate | None = None
        self._scheduler: BatchScheduler | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.files.model_id

    @property
    def slots(self) -> int:
        return self.n_slots

    def load(self) -> None:
        """Validate both files, then load them; every failure is a ``ModelError`` naming the file."""
        text_info, _ = validate_pair(self.files.text, self.files.mmproj)
        shape = ContextShape(
            n_ctx=self.n_ctx * self.n_slots, n_seq=self.n_slots, n_batch=self.n_batch, n_threads=self.n_threads
        )
        native = NativeModel(self.files, shape)
        try:
            source = self._template_override or text_info.chat_template or default_chat_template()
            template = ChatTemplate(source, bos_token=native.bos_text(), eos_token=native.eos_text())
        except BaseException:
            native.close()
            raise
        with self._lock:
            self._template = template
            self._scheduler = BatchScheduler(
                native, template, n_slots=self.n_slots, n_ctx_slot=self.n_ctx, n_batch=self.n_batch,
                image_cache_bytes=self.image_cache_mb * 1024 * 1024,
                prefix_cache_bytes=self.prefix_cache_mb * 1024 * 1024, model_id=self.model_id,
            )

    def close(self) -> None:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.close()

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
        scheduler = self._scheduler
        if scheduler is None:
            raise NotReady("the model is not loaded")
        return scheduler.submit(request, cancel or CancelToken())

    @property
    def image_cache(self) -> tuple[int, int]:
        """(hits, misses) of the image-embedding cache, for tests and metrics."""
        if self._scheduler is None:
            return (0, 0)
        cache = self._scheduler.images.cache
        return cache.hits, cache.misses
