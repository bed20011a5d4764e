"""The in-process llama.cpp engine: a GGUF text model plus its mmproj, serving ``slots`` requests at once.

Pillow has already decoded and verified every image (``pagescribe.images``); libmtmd receives raw RGB pixels
through ``mtmd_bitmap_init``, so no C image parser ever sees request bytes. The prompt comes from the model's
chat template (``prompt.py``) and is tokenized part by part so that request text is never parsed for special
tokens (``tokens.py``). Every request goes through one queue and one continuous-batching loop (``scheduler.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from pagescribe.engine.base import Health, Work
from pagescribe.engine.native import ContextShape, NativeModel
from pagescribe.engine.options import EngineOptions
from pagescribe.engine.prompt import ChatTemplate, PromptPiece, pieces_to_text
from pagescribe.engine.scheduler import BatchScheduler
from pagescribe.errors import NotReady
from pagescribe.models.families import Family, family_for
from pagescribe.models.files import ModelFiles
from pagescribe.models.resolve import resolve_model
from pagescribe.models.validate import validate_pair
from pagescribe.types import GenerationRequest


class LlamaCppEngine:
    """Runs a GGUF text model plus its mmproj in this process (see ``EngineOptions`` for every setting).

    Each of the ``slots`` has a KV stream of ``ctx`` cells of its own; prompt prefixes are copied between streams
    rather than shared in place (``scheduler.py`` says why). ``files`` skips resolving ``options.model``.
    """

    def __init__(self, options: EngineOptions, *, files: ModelFiles | None = None) -> None:
        self.options = options
        self.files = files
        self.n_threads = options.threads or len(os.sched_getaffinity(0))
        self._template: ChatTemplate | None = None
        self.family: Family | None = None
        self._scheduler: BatchScheduler | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.files.model_id if self.files is not None else self.options.model_name()

    @property
    def slots(self) -> int:
        return self.options.slots

    def load(self) -> None:
        """Find the files (download them, for a hub repo id), check both, then load them; every failure is a
        ``ModelError`` naming the file."""
        options = self.options
        if self.files is None:
            self.files = resolve_model(options.model, mmproj=options.mmproj)
        text_info, mmproj_info = validate_pair(self.files.text, self.files.mmproj)
        family = family_for(text_info.architecture, mmproj_info.projector_type, override=options.family)
        shape = ContextShape(
            n_ctx=options.ctx * options.slots, n_seq=options.slots, n_batch=options.batch_size,
            n_threads=self.n_threads,
        )
        native = NativeModel(self.files, shape)
        try:
            source = options.chat_template_text() or text_info.chat_template or family.chat_template()
            template = ChatTemplate(
                source, bos_token=native.bos_text(), eos_token=native.eos_text(), bos_added=native.adds_bos
            )
        except BaseException:
            native.close()
            raise
        with self._lock:
            self._template, self.family = template, family
            self._scheduler = BatchScheduler(native, template, options=options, model_id=self.model_id, family=family)

    def submit(self, works: Sequence[Work], *, wait: bool = False) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            raise NotReady("the model is not loaded")
        scheduler.queue.submit(works, wait=wait)

    def health(self) -> Health:
        scheduler = self._scheduler
        if scheduler is None:
            return Health(False, "the model is not loaded")
        return scheduler.health()

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

    @property
    def image_cache(self) -> tuple[int, int]:
        """(hits, misses) of the image-embedding cache, for tests and metrics."""
        if self._scheduler is None:
            return (0, 0)
        cache = self._scheduler.images.cache
        return cache.hits, cache.misses
