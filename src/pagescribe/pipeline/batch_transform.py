"""A corpus through SageMaker batch transform: page requests as JSON Lines in S3, one transform job, the ``.out``
files turned back into per-document JSONL, Markdown, chunks and a summary.

``prepare`` renders every page here (blank pages are recorded, never sent) and writes one ``.jsonl`` per document
under ``PREFIX/JOB/input/`` — one format-A request body a line — plus ``PREFIX/JOB/manifest.json``, which says which
line is which page. ``submit`` starts the job the way the container expects (``SplitType`` Line, ``BatchStrategy``
MultiRecord: several lines a request, answered one line each, as ``/execution-parameters`` announces), with the
container sized for the job's instance type as an async endpoint is (``aws/sizing.py``): the long time budget, since
no client is there to continue an answer a budget cut, and slots for throughput. ``collect`` reads
``PREFIX/JOB/output/NAME.jsonl.out`` (``AssembleWith`` Line keeps the input's order) back into records.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pagescribe.aws.s3 import S3Location, read_object, write_object
from pagescribe.aws.sizing import async_container, instance_spec
from pagescribe.client.answers import result_from_json
from pagescribe.client.payload import build_body
from pagescribe.errors import InvalidRequest, PagescribeError
from pagescribe.pipeline.assemble import DocumentInfo, error_record, page_record
from pagescribe.pipeline.check import is_blank
from pagescribe.pipeline.errors import DocumentError, UnsupportedDocument
from pagescribe.pipeline.office import office_to_pdf
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.pipeline.records import PageRecord, Transcription
from pagescribe.pipeline.render import RenderedPage, count_pages, render_document
from pagescribe.pipeline.runner import write_run
from pagescribe.pipeline.sources import DocumentKind, discover, file_sha256
from pagescribe.pipeline.summary import RunSummary
from pagescribe.pipeline.transcribe import Attempt, anchor_text, build_request, judge, refused, summarize
from pagescribe.pipeline.writers import (
    RESERVED_NAMES,
    write_document,
)
from pagescribe.prompts import Prompt
from pagescribe.types import GenerationRequest, ImageInput, SamplingParams
from pagescribe.wire.errors import exception_for
from pagescribe.wire.jsonlines import MEDIA_TYPE as JSONLINES

#: SageMaker's longest per-request wait in a transform job (``ModelClientConfig.InvocationsTimeoutInSeconds``).
INVOCATION_TIMEOUT_S = 3600
#: One mini-batch request's body at most: a few pages, so one request stays well inside the timeout.
DEFAULT_MAX_PAYLOAD_MB = 6
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class PageEntry:
    """One page of a document: its line in the input file (``None``: blank, not sent) and what its record needs."""

    page: int
    page_count: int
    line: int | None
    image: dict[str, Any]
    text_layer: str | None = None


@dataclass
class DocumentEntry:
    name: str
    source: str
    source_sha256: str | None
    pages: list[PageEntry] = field(default_factory=list)
    error: dict[str, Any] | None = None  # a document that could not be opened: its error record

    @property
    def input_name(self) -> str:
        return f"{self.name}.jsonl"


@dataclass
class Manifest:
    """Everything ``collect`` needs: the documents, their pages and the options the requests were built with."""

    job: str
    model_name: str
    prompt_name: str
    prompt_text: str
    params: dict[str, Any]
    anchor: str
    render: dict[str, Any]
    documents: list[DocumentEntry]

    def options(self) -> ConvertOptions:
        params = {**self.params, "stop": tuple(self.params.get("stop") or ())}
        return ConvertOptions(
            prompt=Prompt.from_text(self.prompt_text, name=self.prompt_name),
            params=SamplingParams(**params),
            anchor="text-layer" if self.anchor == "text-layer" else "none",
            dpi=self.render.get("dpi"),
            max_side=self.render.get("max_side"),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        docs = [DocumentEntry(**{**d, "pages": [PageEntry(**p) for p in d["pages"]]}) for d in data.pop("documents")]
        return cls(**data, documents=docs)


def locations(prefix: S3Location, job: str) -> tuple[S3Location, S3Location]:
    """The job's input and output prefixes under ``prefix``."""
    root = S3Location(prefix.bucket, f"{prefix.prefix}{job}/")
    return S3Location(root.bucket, root.prefix + "input/"), S3Location(root.bucket, root.prefix + "output/")


def prepare(
    paths: Sequence[str | Path],
    *,
    s3: Any,
    prefix: S3Location,
    job: str,
    model_name: str,
    options: ConvertOptions,
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB,
) -> Manifest:
    """Render the documents and upload one JSON Lines file of requests per document, and the manifest."""
    inputs, _ = locations(prefix, job)
    prompt = options.transcribe.prompt
    params = dataclasses.replace(options.params, given=None)
    manifest = Manifest(
        job=job, model_name=model_name, prompt_name=prompt.id.rsplit("-", 1)[0], prompt_text=prompt.text,
        params=params.as_dict(), anchor=options.anchor or "none", render=options.render_json(), documents=[],
    )
    with tempfile.TemporaryDirectory(prefix="pagescribe-batch-") as work:
        for source in discover(paths, reserved=RESERVED_NAMES):
            entry, lines = _document(source.path, source.name, source.kind, options, Path(work), max_payload_mb)
            manifest.documents.append(entry)
            if lines:
                write_object(s3, inputs.uri(entry.input_name), b"".join(lines), content_type=JSONLINES)
    write_object(s3, _manifest_uri(prefix, job), manifest.to_json().encode())
    return manifest


def _document(
    path: Path, name: str, kind: DocumentKind | None, options: ConvertOptions, work: Path, max_payload_mb: int
) -> tuple[DocumentEntry, list[bytes]]:
    entry = DocumentEntry(name=name, source=str(path), source_sha256=file_sha256(path))
    lines: list[bytes] = []
    try:
        if kind is None:
            raise UnsupportedDocument(f"{path}: not a PDF, an image or an Office document")
        if kind == "office":
            path, kind = office_to_pdf(path, work_dir=work), "pdf"
        count_pages(path, kind=kind)
        pages = render_document(path, kind=kind, dpi=options.dpi, max_side=options.max_side, pages=options.pages)
        for page in pages:
            image = {"width": page.image.width, "height": page.image.height, "sha256": page.image.sha256}
            if options.skip_blank and page.text_layer is None and is_blank(page.image):
                entry.pages.append(PageEntry(page.page, page.page_count, None, image))
                continue
            request = _request(page, options)
            body = build_body(request, payload_limit=max_payload_mb * 1_000_000)
            entry.pages.append(PageEntry(page.page, page.page_count, len(lines), image, page.text_layer))
            lines.append(body + b"\n")
    except PagescribeError as exc:
        reason = exc.reason if isinstance(exc, DocumentError) else type(exc).__name__
        entry.error = {"reason": reason, "message": exc.message, "page_count": len(entry.pages) or None}
    return entry, lines


def _request(page: RenderedPage, options: ConvertOptions) -> GenerationRequest:
    opts = options.transcribe
    anchor = anchor_text(page, mode=opts.anchor, max_chars=opts.anchor_max_chars)
    # Every setting travels: the container's own defaults must not stand in for the run's.
    params = dataclasses.replace(opts.params, given=None)
    return build_request(opts.prompt, page, params=params, anchor=anchor)


def job_request(
    manifest: Manifest,
    *,
    prefix: S3Location,
    instance_type: str,
    instance_count: int,
    max_concurrent: int | None = None,
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB,
    kms_key_id: str | None = None,
) -> dict[str, Any]:
    """The ``CreateTransformJob`` request for a prepared manifest."""
    inputs, outputs = locations(prefix, manifest.job)
    output: dict[str, Any] = {"S3OutputPath": outputs.uri(), "Accept": JSONLINES, "AssembleWith": "Line"}
    if kms_key_id:
        output["KmsKeyId"] = kms_key_id
    request: dict[str, Any] = {
        "TransformJobName": manifest.job,
        "ModelName": manifest.model_name,
        "MaxPayloadInMB": max_payload_mb,
        "BatchStrategy": "MultiRecord",
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": INVOCATION_TIMEOUT_S, "InvocationsMaxRetries": 1},
        # Sized as an async endpoint is: the long budget (no client continues a cut answer), slots for throughput.
        "Environment": async_container(instance_spec(instance_type), invocation_timeout_s=INVOCATION_TIMEOUT_S)
        .environment(),
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": inputs.uri()}},
            "ContentType": JSONLINES,
            "SplitType": "Line",
        },
        "TransformOutput": output,
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
    }
    if max_concurrent is not None:  # else SageMaker asks the container (/execution-parameters: its slots)
        request["MaxConcurrentTransforms"] = max_concurrent
    return request


def collect(s3: Any, *, prefix: S3Location, job: str, out_dir: Path) -> RunSummary:
    """Read the job's ``.out`` files into the same outputs ``convert`` writes, into ``out_dir``."""
    started = time.monotonic()
    raw = read_object(s3, _manifest_uri(prefix, job))
    if raw is None:
        raise InvalidRequest(f"no batch job {job!r} under {prefix.uri()} (its {MANIFEST} is missing)", param="job")
    manifest = Manifest.from_json(raw.decode("utf-8"))
    options = manifest.options()
    _, outputs = locations(prefix, job)
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = []
    for doc in manifest.documents:
        records = _records(doc, manifest, options, read_object(s3, outputs.uri(doc.input_name + ".out")))
        write_document(out_dir, doc.name, records)
        documents.append(records)
    return write_run(out_dir, documents, options.chunks, elapsed_s=time.monotonic() - started)


def _records(
    doc: DocumentEntry, manifest: Manifest, options: ConvertOptions, output: bytes | None
) -> list[PageRecord]:
    info = DocumentInfo(source=doc.source, source_sha256=doc.source_sha256, name=doc.name)
    records: list[PageRecord] = []
    if doc.error is not None:
        records.append(error_record(info, reason=doc.error["reason"], message=doc.error["message"],
                                    page_count=doc.error.get("page_count")))  # fmt: skip
    lines = output.decode("utf-8").splitlines() if output is not None else []
    opts = options.transcribe
    for entry in doc.pages:
        if entry.line is None:
            result = _blank(options)
        elif entry.line >= len(lines):
            result = _missing(options, manifest, "the job wrote no answer for this page (did it fail or stop?)")
        else:
            result = summarize((_attempt(lines[entry.line], opts.params),), options=opts, model_id=manifest.model_name)
        page = RenderedPage(Path(doc.source), entry.page, entry.page_count, _PLACEHOLDER, entry.text_layer)
        record = page_record(info, page, result, prompt_id=opts.prompt.id, render=options.render_json())
        records.append(dataclasses.replace(record, image=entry.image))  # the page's own, not the placeholder's
    return records


def _attempt(line: str, params: SamplingParams) -> Attempt:
    try:
        data = json.loads(line)
    except ValueError:
        return refused(params, InvalidRequest(f"the job wrote a line that is not JSON: {line[:120]!r}"))
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        return refused(params, exception_for(str(error.get("type")), str(error.get("message")), param=None))
    try:
        return judge(params, result_from_json(data, source="the transform job"))
    except PagescribeError as exc:
        return refused(params, exc)


def _blank(options: ConvertOptions) -> Transcription:
    return Transcription("blank", "", None, None, options.transcribe.describe(), {}, {}, 0)


def _missing(options: ConvertOptions, manifest: Manifest, why: str) -> Transcription:
    return Transcription("failed", "", None, manifest.model_name, options.transcribe.describe(), {}, {}, 0,
                         reason="backend_error", error=why)  # fmt: skip


def _manifest_uri(prefix: S3Location, job: str) -> str:
    return S3Location(prefix.bucket, f"{prefix.prefix}{job}/").uri(MANIFEST)


#: Records are built from the manifest, not from pixels: a 1x1 stand-in carries the page through ``page_record``.
_PLACEHOLDER = ImageInput(1, 1, b"\0\0\0")
