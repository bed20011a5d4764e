"""One page image to text: build the request, ask the model, check the answer, retry once, decide.

The request is one user turn laid out as prompt text, then the page image, then (with ``--anchor text-layer``)
the page's own text; model families trained with the image first (Qwen2.5-VL, granite-docling, Gemma 3,
LightOnOCR) get the image before the prompt, and a family that takes the image alone gets no prompt text. The
prompt is the same leading text for every page, so a server that caches prompt prefixes reuses it. The answer
becomes the page's text through the family's post-processing (DocTags to Markdown), the raw answer kept beside it.
The model is always reached through a ``Client`` (in process, a server or an endpoint alike).
``attempt`` is one try and nothing else; the retry policy lives in ``transcribe``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pagescribe.client import Client, ClientConfigError
from pagescribe.errors import ContextOverflow, EngineError, PagescribeError, ServiceUnavailable
from pagescribe.models.postprocess import PostProcess, page_text
from pagescribe.pipeline.check import DEFAULT_LOOP_RULE, LoopRule, check_output
from pagescribe.pipeline.records import Transcription
from pagescribe.pipeline.render import RenderedPage
from pagescribe.pipeline.route import AnchorMode
from pagescribe.prompts import Prompt
from pagescribe.types import GenerationRequest, GenerationResult, ImagePart, Message, SamplingParams, TextPart

#: Transcription wants the most likely words: greedy decoding, a fixed seed, room for a dense page.
DEFAULT_PARAMS = SamplingParams(max_tokens=1024, temperature=0.0, seed=0)
ANCHOR_HEADER = (
    "For reference, the text extracted from this page (it may be incomplete, out of order or "
    "hyphenated; use it to get names and numbers right):"
)


@dataclass(frozen=True, slots=True)
class TranscribeOptions:
    """How pages are put to the model. ``retry_params`` default: the first try's, warmer and penalised."""

    prompt: Prompt
    params: SamplingParams = DEFAULT_PARAMS
    retry_params: SamplingParams | None = None
    anchor: AnchorMode = "none"
    anchor_max_chars: int = 3000
    time_limit_s: float | None = None
    loop_rule: LoopRule = field(default_factory=LoopRule)
    image_first: bool = False
    postprocess: PostProcess = "none"

    @property
    def second_params(self) -> SamplingParams:
        """Sampling for the retry: a different path out of a loop than greedy decoding gave."""
        if self.retry_params is not None:
            return self.retry_params
        seed = None if self.params.seed is None else self.params.seed + 1
        return replace(self.params, temperature=0.3, repeat_penalty=1.1, seed=seed)

    def describe(self) -> dict[str, Any]:
        """The options that shape the model's answer, as recorded and as part of the cache key."""
        described: dict[str, Any] = {
            "sampling": _params_json(self.params),
            "retry_sampling": _params_json(self.second_params),
            "anchor": self.anchor,
            "anchor_max_chars": self.anchor_max_chars,
            "time_limit_s": self.time_limit_s,
        }
        # the model family's layout and post-processing, when they are not LLaVA's (so its answers are cached apart)
        if self.image_first:
            described["image_first"] = True
        if self.postprocess != "none":
            described["postprocess"] = self.postprocess
        return described


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: the result (None when no answer came) and what was wrong with it (None when usable)."""

    params: SamplingParams
    result: GenerationResult | None
    problem: str | None = None
    reason: str | None = None
    transient: bool = False


def anchor_text(page: RenderedPage, *, mode: AnchorMode, max_chars: int) -> str | None:
    """The text-layer block appended after the image, or None (mode ``none``, or no text layer)."""
    if mode != "text-layer" or not page.text_layer:
        return None
    return anchor_block(page.text_layer, max_chars=max_chars)


def anchor_block(text: str | None, *, max_chars: int) -> str | None:
    """The block appended after the image: a header, then ``text`` (cut at ``max_chars``); None without text."""
    if not text or not text.strip():
        return None
    if len(text) > max_chars:
        text = text[:max_chars].rstrip() + " [...]"
    return f"{ANCHOR_HEADER}\n{text}"


def build_request(
    prompt: Prompt,
    page: RenderedPage,
    *,
    params: SamplingParams,
    anchor: str | None = None,
    time_limit_s: float | None = None,
    image_first: bool = False,
) -> GenerationRequest:
    """One user turn: the prompt (identical for every page), the page image, then the anchor text if any; with
    ``image_first`` the image, then the prompt (an empty prompt: the image alone)."""
    image = ImagePart(page.image)
    if image_first:
        parts: list[TextPart | ImagePart] = [image, *([TextPart(prompt.text)] if prompt.text else [])]
    else:
        parts = [TextPart(prompt.text + "\n"), image]
    if anchor:
        parts.append(TextPart("\n" + anchor))
    return GenerationRequest(messages=(Message("user", tuple(parts)),), params=params, time_limit_s=time_limit_s)


def attempt(client: Client, request: GenerationRequest, *, loop_rule: LoopRule = DEFAULT_LOOP_RULE) -> Attempt:
    """Ask once and check the answer. Failures to answer become a failed attempt, not an exception."""
    try:
        result = client.generate(request)
    except PagescribeError as exc:
        return refused(request.params, exc)
    return judge(request.params, result, loop_rule=loop_rule)


def refused(params: SamplingParams, exc: PagescribeError) -> Attempt:
    """The attempt of a request that got an error instead of an answer."""
    # A request error repeats with the same input; an engine or service failure may not, nor missing AWS
    # credentials or region (no fault of the page: a rerun with the configuration fixed asks again).
    transient = isinstance(exc, ServiceUnavailable | EngineError | ClientConfigError)
    reason = "context_overflow" if isinstance(exc, ContextOverflow) else "backend_error"
    return Attempt(params, None, f"{type(exc).__name__}: {exc.message}", reason, transient)


def judge(params: SamplingParams, result: GenerationResult, *, loop_rule: LoopRule = DEFAULT_LOOP_RULE) -> Attempt:
    """Whether an answer is a page's text: it ended by itself or at max_tokens, and passes the output check."""
    if result.finish_reason not in ("stop", "length"):
        # The client continues an answer a time limit cut; one still cut is not a page's text. Not cached: a rerun
        # (with a longer budget, or a less busy server) asks again.
        cut = f"the answer was cut ({result.finish_reason}) after {result.usage.completion_tokens} tokens"
        more = f" and {result.continuations} continuation(s)" if result.continuations else ""
        return Attempt(params, result, cut + more, result.finish_reason, transient=True)
    problem = check_output(result.text, rule=loop_rule)
    if problem is None:
        return Attempt(params, result)
    reason = "empty_output" if problem == "empty output" else "repetition_loop"
    return Attempt(params, result, problem, reason)


def transcribe(
    client: Client, page: RenderedPage, options: TranscribeOptions, *, anchor: str | None = None
) -> tuple[Attempt, ...]:
    """Try the page; when the answer fails the check (or the model fails to answer), try once more and stop.

    ``anchor`` is the page's text to show the model beside the image (the router's choice: text layer or OCR;
    without one, the text layer when ``options.anchor`` is ``text-layer``).
    The retry uses ``options.second_params``; after a context overflow it also drops the anchor text. A request the
    model refused for what it is (too large, not an image) is not sent again.
    """
    if anchor is None and options.anchor == "text-layer":
        anchor = page.text_layer
    anchor = anchor_block(anchor, max_chars=options.anchor_max_chars)
    first = attempt(
        client,
        build_request(
            options.prompt, page, params=options.params, anchor=anchor, time_limit_s=options.time_limit_s,
            image_first=options.image_first,
        ),
        loop_rule=options.loop_rule,
    )
    if first.problem is None or first.reason in ("time_limit", "cancelled"):  # already continued as far as allowed
        return (first,)
    if first.result is None and not first.transient and first.reason != "context_overflow":
        return (first,)  # the same page is refused the same way again (too large, not an image, ...)
    if first.reason == "context_overflow":
        anchor = None
    retry = build_request(
        options.prompt, page, params=options.second_params, anchor=anchor, time_limit_s=options.time_limit_s,
        image_first=options.image_first,
    )
    return first, attempt(client, retry, loop_rule=options.loop_rule)


def summarize(
    attempts: tuple[Attempt, ...], *, options: TranscribeOptions, model_id: str, extra: Mapping[str, Any] | None = None
) -> Transcription:
    """Fold the attempts into the page's transcription: the last one decides, usage and timings add up."""
    last = attempts[-1]
    usage: dict[str, int] = {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cached_tokens": 0, "image_tokens": 0
    }
    timings: dict[str, float] = {"image_encode_ms": 0.0, "prompt_ms": 0.0, "generate_ms": 0.0}
    for a in attempts:
        if a.result is not None:
            u = a.result.usage
            _add(usage, {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                         "total_tokens": u.total_tokens, "cached_tokens": u.cached_tokens,
                         "image_tokens": u.image_tokens})
            _add(timings, a.result.timings.as_dict())
    # The sampling that produced this text (the retry's, after a retry); the rest as configured.
    parameters = {**options.describe(), **(extra or {}), "sampling": _params_json(last.params)}
    del parameters["retry_sampling"]
    ok = last.problem is None and last.result is not None
    raw = last.result.text.strip() if ok and last.result is not None else ""
    text = page_text(raw, options.postprocess).strip() if raw else ""
    return Transcription(
        status="ok" if ok else "failed",
        text=text,
        raw_text=raw if text != raw else None,
        finish_reason=last.result.finish_reason if last.result is not None else None,
        model=(last.result.model or model_id) if last.result is not None else model_id,
        parameters=parameters,
        usage=usage,
        timings={k: round(v, 3) for k, v in timings.items()},
        attempts=len(attempts),
        continuations=sum(a.result.continuations for a in attempts if a.result is not None),
        confidence=last.result.confidence if ok and last.result is not None else None,
        reason=None if ok else last.reason,
        error=None if ok else "; ".join(f"attempt {i}: {a.problem}" for i, a in enumerate(attempts, 1)),
        transient=last.transient,
    )


def _add(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


def _params_json(params: SamplingParams) -> dict[str, Any]:
    return params.as_dict()
