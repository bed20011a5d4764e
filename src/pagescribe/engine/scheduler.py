"""Continuous batching: N slots share one model and one context, driven by one thread that owns the queue.

Callers on any thread submit work to ``queue`` (``queue.py``: bounded, all or none); the loop takes it from there.
Each step builds one batch holding the next token of every generating slot plus prompt text of admitted slots
(bounded by the batch size), samples every slot that produced logits and hands each new piece straight to its
request's sink; then it evaluates the images next in line of admitted prompts (in pieces of at most a batch; every
one of them unless a piece would cost a running request its deadline), so pages that arrive together start
generating together. Requests that share a leading prompt reuse its KV cells (prefix cache; a request whose prefix
another slot is evaluating waits for it; a reused prefix no slot keeps any more is saved to host memory,
``prefixes.py``); identical images reuse their embeddings (image cache). Cancellation and each request's deadline
are checked every step.

A time limit never costs the work done: every admitted request gets at least one step, a request near its deadline
gets a step sized to what fits before it (from the measured evaluation rate), and a request cut short leaves its
evaluated prompt in its slot (a half-evaluated image included) and its answer's tokens remembered, so the same
request continued (its text so far as the assistant's prefix) evaluates only what is new.
"""

from __future__ import annotations

import logging
import threading
import time

from pagescribe.engine.base import Health
from pagescribe.engine.embeddings import EmbeddingCache, ImageDecoder
from pagescribe.engine.native import NativeModel, TokenBatch
from pagescribe.engine.options import EngineOptions
from pagescribe.engine.prefixes import MIN_SHARED_POSITIONS, SavedPrefixes
from pagescribe.engine.prompt import ChatTemplate
from pagescribe.engine.queue import Heartbeat, Job, WorkQueue
from pagescribe.engine.sampling import Sampler
from pagescribe.engine.slots import Slot, best_prefix
from pagescribe.engine.textstream import TextStream
from pagescribe.engine.tokens import AnswerTokens, ImageKey, TokenizedPrompt, cells, common_prefix, span
from pagescribe.engine.truncate import truncate_text
from pagescribe.errors import ContextOverflow, EngineError, NotReady
from pagescribe.images import fit_image
from pagescribe.models.families import FAMILIES, Family
from pagescribe.types import FinishReason, GenerationRequest, GenerationResult, ImagePart, Message, TokenLogprob

log = logging.getLogger("pagescribe.engine")

MiB = 1024 * 1024
#: Fewest prompt positions a step gives a request however close its deadline: every request makes progress.
MIN_STEP = 32
#: Of the time left before a deadline, the share a step may be planned to take (the rate is an estimate).
STEP_SHARE = 0.8


class BatchScheduler:
    """Owns ``native`` after construction; ``close`` stops the thread and fails what is still waiting."""

    def __init__(
        self,
        native: NativeModel,
        template: ChatTemplate,
        *,
        options: EngineOptions,
        model_id: str,
        family: Family = FAMILIES["llava-1.5"],
    ) -> None:
        self.native = native
        self.template = template
        self.family = family
        self.n_ctx_slot = options.ctx
        self.n_batch = options.batch_size
        self.model_id = model_id
        self.slots = [Slot(seq=i) for i in range(options.slots)]
        self.images = ImageDecoder(native, step=self.n_batch, cache=EmbeddingCache(options.image_cache_mb * MiB))
        self.saved = SavedPrefixes(options.prefix_cache_mb * MiB)
        self.answers = AnswerTokens()
        self._rate = 0.0  # positions evaluated per second in prompt steps, measured (0: not yet)
        self.queue = WorkQueue(slots=options.slots, queue_size=options.queue_size, retry_after_s=options.retry_after_s)
        self.heartbeat = Heartbeat(stall_timeout_s=options.stall_timeout_s)
        self._batch = TokenBatch(self.n_batch)
        self._thread = threading.Thread(target=self._loop, name="pagescribe-batch", daemon=True)
        self._thread.start()

    def health(self) -> Health:
        busy = sum(s.active for s in self.slots)
        return self.heartbeat.health(thread=self._thread, queue=self.queue, busy=busy)

    def close(self) -> None:
        self.queue.close()
        self._thread.join(timeout=30)
        if self._thread.is_alive():  # a native call that never returns: leave the model to the process's end
            log.error("the batch thread did not stop; the model is left loaded")
            return
        for job in self.queue.take():  # the loop is gone: nothing else will answer these
            job.finish(NotReady("the engine is shutting down"))
        self.images.close()
        self._batch.close()
        self.native.close()

    # -- the loop ------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while self.queue.wait_for_work(busy=any(s.active for s in self.slots)):
            self.heartbeat.beat()
            try:
                self._admit()
                self._stop_finished_early()
                if any(s.active for s in self.slots):
                    self._step()
            except Exception as exc:  # a native failure: fail what is running, keep serving
                log.exception("batch step failed")
                self.heartbeat.failed(exc)
                self._fail_all(exc if isinstance(exc, EngineError) else EngineError(f"inference failed: {exc}"))
        self._fail_all(NotReady("the engine is shutting down"))
        for job in self.queue.take():
            job.finish(NotReady("the engine is shutting down"))

    def _fail_all(self, exc: Exception) -> None:
        for slot in self.slots:
            if slot.job is not None:
                slot.job.finish(exc)
                self._release(slot)
            slot.cached, slot.partial = [], None
        self.native.clear()

    # -- admission and prefix reuse ------------------------------------------------------------------------

    def _admit(self) -> None:
        """Start waiting jobs on idle slots, in order; a job whose prompt another slot is evaluating right now
        waits for that slot to get past the part they share, then copies it instead of computing it again."""
        held: list[Job] = []
        lent: set[int] = set()  # slots whose cells are copied at the next decode: not to be overwritten before it
        jobs = self.queue.take()
        while jobs:
            job = jobs.pop(0)
            # Cancelled before it started: answered, never left waiting. Out of time is not a reason not to start:
            # a request gets one step however long it waited, so that continuing it makes progress.
            if job.stop_reason() == "cancelled":
                self._drop(job, job.empty_result("cancelled", self.model_id))
                continue
            idle = [s for s in self.slots if not s.active and s.seq not in lent]
            if not idle:
                held.append(job)
                continue
            prompt = job.prompt or self._tokenize(job)
            if prompt is None:
                continue
            if self._prefix_in_progress(prompt):
                job.prompt = prompt
                held.append(job)
                continue
            job.prompt = None  # the slot owns it from here
            slot = self._choose_slot(idle, prompt)
            try:
                donor = self._start(slot, job, prompt)
            except Exception as exc:  # e.g. a response_format whose schema cannot become a grammar
                job.finish(exc)
                self._release(slot)
                slot.cached = []
                self.native.forget(slot.seq, 0)
                continue
            if donor is not None:
                # llama.cpp copies a KV stream at the next decode, in order; until then nothing may write the
                # source's data (a saved state restored into it would be copied instead), so no later job of this
                # step starts on it. Reading it, or copying from it again, is safe.
                lent.add(donor.seq)
        self.queue.hold(held)

    def _drop(self, job: Job, event: GenerationResult | BaseException) -> None:
        """Answer a job that will not run (stopped, refused) and free its tokenized prompt."""
        if job.prompt is not None:
            job.prompt.close()
            job.prompt = None
        job.finish(event)

    def _tokenize(self, job: Job) -> TokenizedPrompt | None:
        """The job's prompt, or ``None`` after answering the job with why it cannot run."""
        request = job.request
        try:
            messages = sized_images(request, self.family)
            if request.truncate is not None:
                native = self.native
                messages = truncate_text(messages, request.truncate, tokenize=native.tokenize, piece=native.piece)
            prompt = TokenizedPrompt(self.native, self.template.render(messages), answers=self.answers)
        except Exception as exc:
            job.finish(exc)
            return None
        need = max(prompt.n_positions, prompt.n_cells)
        if need >= self.n_ctx_slot:
            prompt.close()
            job.finish(ContextOverflow(
                f"the prompt needs {need} tokens but the context window holds {self.n_ctx_slot}: "
                "send fewer or smaller images or less text, or raise the context size (--ctx)"
            ))
            return None
        return prompt

    def _prefix_in_progress(self, prompt: TokenizedPrompt) -> bool:
        """Whether a slot still evaluating its prompt will soon hold more of ``prompt`` than any slot holds now
        (the same page sent twice at once, or the shared instructions on a cold start)."""
        have = max(best_prefix(self._sources(), prompt.keys)[1], self.saved.best(prompt.keys)[1])
        limit = len(prompt.keys) - 1
        return any(
            min(common_prefix(s.prompt_keys(), prompt.keys), limit) > have
            for s in self._sources() if s.phase == "prompt"
        )

    def _sources(self) -> list[Slot]:
        """Slots whose cells can be lent as a prefix: all of them, except sequences a sliding window has cut the
        beginning off (Gemma 3 past its window)."""
        return [s for s in self.slots if not self.native.pruned(s.seq)]

    def _choose_slot(self, idle: list[Slot], prompt: TokenizedPrompt) -> Slot:
        """The idle slot with the longest own match; failing that, the one with the least cached (cheapest)."""
        own, _, _ = best_prefix(idle, prompt.keys)
        return own if own is not None else min(idle, key=lambda s: len(s.cached))

    def _start(self, slot: Slot, job: Job, prompt: TokenizedPrompt) -> Slot | None:
        """Put ``job`` on ``slot``, reusing the longest cached prefix; the slot whose stream it copied, if any."""
        _, own_keys, own_pos = best_prefix([slot], prompt.keys)
        source, n_keys, n_pos = best_prefix(self._sources(), prompt.keys)
        if source is None or n_keys <= own_keys:  # the slot's own cells do as well: no copy
            source, n_keys, n_pos = slot, own_keys, own_pos
        self._save_shared(slot, keep=own_keys)
        saved, saved_keys, saved_pos = self.saved.best(prompt.keys)
        donor: Slot | None = None
        rows = 0  # of a half-evaluated image to resume
        if saved_keys > n_keys:  # no slot holds as much as a saved state: copy it back from host memory
            try:
                self.native.restore(slot.seq, self.saved.state(saved))
            except EngineError:
                self.saved.clear()  # fail this request only, not every later one that starts the same way
                raise
            self.native.forget(slot.seq, saved_pos)
            n_keys, n_pos = saved_keys, saved_pos
        elif source is slot:
            rows = self._resumable_rows(slot, prompt, n_keys)
            self.native.forget(slot.seq, n_pos + rows)
        else:
            self.native.forget(slot.seq, 0)
            self.native.share(source.seq, slot.seq, n_pos)
            donor = source
        reused = n_pos >= MIN_SHARED_POSITIONS  # more than a chat template: worth saving when the slots move on
        slot.shared = n_keys if reused else 0
        if reused and donor is not None:
            donor.shared = max(donor.shared, n_keys)
        params = job.request.params
        slot.job, slot.prompt, slot.phase = job, prompt, "prompt"
        slot.cached = list(prompt.keys[:n_keys])
        slot.cursor, slot.n_past = n_keys, n_pos + rows
        slot.n_cached = sum(cells(k) for k in prompt.keys[:n_keys]) + rows
        slot.image_done, slot.image_embd, slot.partial = rows, None, None
        slot.sampler = Sampler(self.native.model, self.native.vocab, params)
        slot.text = TextStream(params.stop)
        slot.n_generated, slot.next_token, slot.out_index = 0, -1, -1
        slot.generated, slot.complete, slot.steps, slot.logprobs = [], 0, 0, []
        slot.started, slot.first_token, slot.encode_ms = time.perf_counter(), 0.0, 0.0
        return donor

    def _resumable_rows(self, slot: Slot, prompt: TokenizedPrompt, n_keys: int) -> int:
        """Rows of an image ``slot`` had evaluated when its request was cut, if ``prompt`` goes on with that image
        right after what it shares with the slot (the cells are still there)."""
        if slot.partial is None or n_keys != len(slot.cached) or n_keys >= len(prompt.keys):
            return 0
        key, rows = slot.partial
        return rows if prompt.keys[n_keys] == key else 0

    def _save_shared(self, slot: Slot, *, keep: int) -> None:
        """Before ``slot`` drops its cells past ``keep`` keys: if they hold the last copy of a prefix that requests
        have reused, or of an answer a time limit cut (to be continued), save it to host memory (the slot's cells
        after it are dropped first)."""
        hot = slot.cached[: slot.shared]
        if len(hot) <= keep or not self.saved.enabled or self.saved.covers(hot):
            return
        if any(other is not slot and common_prefix(other.cached, hot) >= len(hot) for other in self.slots):
            return
        self.native.forget(slot.seq, sum(span(k) for k in hot))
        try:
            self.saved.put(hot, self.native.save(slot.seq))
        except EngineError:
            log.warning("a shared prompt prefix could not be saved; it will be evaluated again when needed")

    def _release(self, slot: Slot) -> None:
        if self.native.pruned(slot.seq):  # its beginning is gone: nothing there for a later prompt to reuse
            slot.cached, slot.shared, slot.partial = [], 0, None
            self.native.forget(slot.seq, 0)
        if slot.prompt is not None:
            slot.prompt.close()
        if slot.sampler is not None:
            slot.sampler.close()
        slot.job, slot.prompt, slot.sampler, slot.text, slot.image_embd = None, None, None, None, None
        slot.phase = "idle"

    def _finish(self, slot: Slot, finish: FinishReason) -> None:
        assert slot.job is not None and slot.text is not None and slot.prompt is not None
        cut = finish == "time_limit"
        # A cut answer ends at its last whole character: the bytes of one split by the cut come with the rest.
        tail = slot.text.finish(complete_only=cut)
        if tail:
            slot.job.emit(tail)
        if cut:  # ready to be continued: its tokens remembered, its cells kept (or saved), a half image too
            prompt = slot.prompt
            tokens = prompt.prefix_tokens + slot.generated[: slot.complete]
            self.answers.remember(prompt.prefix_text + slot.text.text, tokens)
            slot.shared = len(slot.cached)  # saved to host memory if another request needs the slot first
            if slot.phase == "prompt" and slot.image_done and not slot.prompt_done():
                key = slot.next_key()
                if isinstance(key, ImageKey):
                    slot.partial = (key, slot.image_done)
        slot.job.finish(slot.result(finish, self.model_id))
        self._release(slot)

    def _stop_finished_early(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.job is not None:
                reason = slot.job.stop_reason(now)
                # Out of time, but not before one step: every request makes some progress to continue from.
                if reason == "cancelled" or (reason == "time_limit" and slot.steps):
                    self._finish(slot, reason)

    # -- one step ------------------------------------------------------------------------------------------

    def _step(self) -> None:
        batch = self._batch
        batch.clear()
        generating = [s for s in self.slots if s.phase == "generate"]
        for slot in generating:
            slot.out_index = batch.add(slot.next_token, slot.n_past, slot.seq, logits=True)
        prompting = sorted((s for s in self.slots if s.phase == "prompt"), key=lambda s: s.started)
        for slot in generating:
            slot.steps += 1
        finishing_prompt = self._add_prompt_text(prompting, self.n_batch - len(generating))
        started = time.perf_counter()
        if batch.n and self.native.decode(batch.raw) != 0:
            raise EngineError("llama_decode failed on a batch")
        self._measure(batch.n, time.perf_counter() - started)
        for slot in generating:
            slot.n_past += 1
            slot.cached.append(slot.next_token)
            self._sample(slot)
        for slot in finishing_prompt:
            slot.phase = "generate"
            slot.first_token = time.perf_counter()
            self._sample(slot)
        self._prefill_images(prompting)

    def _prefill_images(self, prompting: list[Slot]) -> None:
        """Evaluate the images next in line of admitted prompts, oldest first, after the step's batch, so pages
        that arrive together start generating together and every later step decodes all of them at once (fewer,
        fuller decode steps: llama-server's order too). A piece that would run past a running request's deadline
        waits for the next step, but every step evaluates at least one piece."""
        done = 0
        for slot in prompting:  # oldest first; those whose prompt ended in this step's batch now generate
            while slot.phase == "prompt" and not slot.prompt_done() and isinstance(slot.next_key(), ImageKey):
                if done and not self._may_hold(slot):
                    return
                self._image_step(slot)
                self.heartbeat.beat()
                done += 1

    def _may_hold(self, slot: Slot) -> bool:
        """Whether one more image piece for ``slot`` leaves every running request time for its own next step:
        none is cancelled or out of time, and none has a deadline within the piece's estimated time."""
        key = slot.next_key()
        assert isinstance(key, ImageKey)
        now = time.monotonic()
        piece_s = min(key.n_tokens - slot.image_done, self._room(slot)) / self._rate if self._rate else 0.0
        for other in self.slots:
            job = other.job
            if job is None:
                continue
            if job.stop_reason(now) is not None:
                return False
            if job.deadline is not None and (job.deadline - now) * STEP_SHARE < piece_s:
                return False
        return True

    def _measure(self, positions: int, seconds: float) -> None:
        """Keep a running estimate of how many positions a prompt step evaluates per second."""
        if positions >= MIN_STEP and seconds > 0:
            rate = positions / seconds
            self._rate = rate if not self._rate else 0.7 * self._rate + 0.3 * rate

    def _room(self, slot: Slot) -> int:
        """Most prompt positions to give ``slot`` in this step: what fits before its deadline, at least
        ``MIN_STEP``, at most a batch."""
        deadline = slot.job.deadline if slot.job is not None else None
        if deadline is None or not self._rate:
            return self.n_batch
        fits = int((deadline - time.monotonic()) * self._rate * STEP_SHARE)
        return max(MIN_STEP, min(self.n_batch, fits))

    def _add_prompt_text(self, prompting: list[Slot], budget: int) -> list[Slot]:
        """Put prompt tokens of admitted slots into the batch; returns slots whose prompt ends in this batch."""
        finishing = []
        for slot in prompting:
            if budget <= 0:
                break
            if slot.prompt_done() or isinstance(slot.next_key(), ImageKey):
                continue
            tokens = slot.text_run(min(budget, self._room(slot)))
            slot.steps += 1
            last_of_prompt = slot.cursor + len(tokens) == len(slot.prompt_keys())
            for i, token in enumerate(tokens):
                is_last = last_of_prompt and i == len(tokens) - 1
                index = self._batch.add(token, slot.n_past + i, slot.seq, logits=is_last)
                if is_last:
                    slot.out_index = index
            slot.cursor += len(tokens)
            slot.n_past += len(tokens)
            slot.cached.extend(tokens)
            budget -= len(tokens)
            if last_of_prompt:
                finishing.append(slot)
        return finishing

    def _image_step(self, slot: Slot) -> None:
        key = slot.next_key()
        assert isinstance(key, ImageKey) and slot.prompt is not None
        slot.steps += 1
        chunk = slot.prompt.chunk(key.chunk_index)
        if slot.image_embd is None:  # (image_done > 0: an image resumed where a cut request left it)
            embd, encode_ms = self.images.embeddings(key, chunk)
            slot.image_embd, slot.encode_ms = embd, slot.encode_ms + encode_ms
        embd = slot.image_embd
        first_pos = slot.n_past - slot.image_done
        if self.images.needs_helper(chunk):
            slot.n_past = self.images.decode_whole(chunk, embd, first_pos, slot.seq)
            slot.image_done = key.n_tokens
        else:
            started = time.perf_counter()
            rows = self.images.decode_part(embd, slot.image_done, first_pos, slot.seq, limit=self._room(slot))
            self._measure(rows, time.perf_counter() - started)
            slot.image_done += rows
            slot.n_past = first_pos + slot.image_done
            if slot.image_done >= key.n_tokens:
                slot.n_past = first_pos + span(key)
        if slot.image_done >= key.n_tokens:
            slot.cursor += 1
            slot.cached.append(key)
            slot.image_embd, slot.image_done = None, 0

    def _sample(self, slot: Slot) -> None:
        assert slot.sampler is not None and slot.text is not None and slot.job is not None
        params = slot.job.request.params
        token = slot.sampler.sample(self.native.ctx, slot.out_index)
        if self.native.is_end(token):
            self._finish(slot, "stop")
            return
        slot.n_generated += 1
        slot.generated.append(token)
        data = self.native.piece(token, special=self.family.special_output)
        if slot.n_generated == 1 and self.native.space_prefix and not slot.prompt_continues():
            data = data.removeprefix(b" ")  # SentencePiece's word-start marker, not text
        if params.logprobs is not None:
            slot.logprobs.append(self._logprob(slot.out_index, token, data, top=params.logprobs))
        piece = slot.text.push(data)
        if not slot.text.pending:
            slot.complete = slot.n_generated
        if piece:
            slot.job.emit(piece)
        if slot.text.stopped:
            self._finish(slot, "stop")
        elif slot.n_generated >= params.max_tokens or slot.n_cells() + 1 >= self.n_ctx_slot:
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _logprob(self, index: int, token: int, data: bytes, *, top: int) -> TokenLogprob:
        """The sampled token's log-probability under the logits it was drawn from, and the ``top`` likeliest."""
        logprob, best = self.native.logprobs(index, token, top)
        alternatives = tuple(TokenLogprob(_text(self.native.piece(i)), lp, self.native.piece(i), i) for i, lp in best)
        return TokenLogprob(_text(data), logprob, data, token, alternatives)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def sized_images(request: GenerationRequest, family: Family) -> tuple[Message, ...]:
    """The request's messages with every image fitted within the family's image policy (the request's
    ``image_max_side`` within the family's limits), so the projector gets the page at the intended resolution."""
    max_side = family.image.max_side(request.params.image_max_side)
    if all(max(i.width, i.height) <= max_side for i in request.images):
        return request.messages
    return tuple(
        Message(m.role, tuple(ImagePart(fit_image(p.image, max_side)) if isinstance(p, ImagePart) else p
                              for p in m.parts))
        for m in request.messages
    )
