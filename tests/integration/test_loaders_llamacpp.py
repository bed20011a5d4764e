"""The RAG framework loaders (LangChain, LlamaIndex, Haystack), each over a different backend (a server, a SageMaker
endpoint, the engine in process), give the page texts `pagescribe convert` writes for the same files: the real
libraries, the real llama.cpp engine on the tiny model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pagescribe.cli import main
from pagescribe.engine.llamacpp import LlamaCppEngine
from pagescribe.pipeline.chunking import ChunkOptions
from pagescribe.pipeline.options import ConvertOptions
from pagescribe.types import SamplingParams
from pdfgen import text_page, write_pdf, write_png
from servers import LiveServer, sagemaker_env

pytestmark = pytest.mark.integration

#: What `convert --max-tokens 8` asks (its other defaults are ConvertOptions' own).
OPTIONS = ConvertOptions(route="vlm", params=SamplingParams(max_tokens=8, temperature=0.0, seed=0))


@pytest.fixture(scope="module")
def live(server_engine: LlamaCppEngine) -> Iterator[LiveServer[LlamaCppEngine]]:
    with LiveServer(server_engine, time_limit_s=30) as server:
        yield server


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("docs")
    pdf = write_pdf(folder / "report.pdf", [text_page("# Revenue", ["North 12", "South 7"]), text_page("Costs", ["x"])])
    return [pdf, write_png(folder / "slide.png", text="Quarterly plan")]


@pytest.fixture(scope="module")
def converted(live: LiveServer[LlamaCppEngine], inputs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``(source, page) -> text`` as `pagescribe convert --url` writes it (the model's, or the text layer)."""
    out = tmp_path_factory.mktemp("out")
    args = ["convert", *map(str, inputs), "--out", str(out), "--url", live.url, "--max-tokens", "8", "--route", "vlm",
            "--progress", "quiet"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    texts = {}
    for path in out.glob("*.jsonl"):
        for record in map(json.loads, path.read_text().splitlines()):
            if record.get("page") is not None:
                texts[(record["source"], record["page"])] = record["text"] or record["fallback_text"]
    assert len(texts) == 3
    return texts


def test_langchain_loader_over_a_server_is_lazy_and_gives_convert_s_pages(
    live: LiveServer[LlamaCppEngine], inputs: list[Path], converted: dict
) -> None:
    from langchain_core.documents import Document

    from pagescribe.integrations.langchain import PagescribeLoader

    loader = PagescribeLoader([str(p) for p in inputs], url=live.url, options=OPTIONS)
    lazy = loader.lazy_load()
    first = next(lazy)
    docs = [first, *lazy]
    assert isinstance(first, Document)
    assert {(d.metadata["source"], d.metadata["page"]): d.page_content for d in docs} == converted
    assert all(d.metadata["model"] == "pagescribe-tiny" and d.metadata["route"] == "vlm"
               for d in docs)  # fmt: skip


def test_llamaindex_reader_over_an_endpoint_gives_convert_s_pages(
    live: LiveServer[LlamaCppEngine], inputs: list[Path], converted: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pagescribe.integrations.llamaindex import PagescribeReader

    for name, value in sagemaker_env(live.url).items():
        monkeypatch.setenv(name, value)
    documents = PagescribeReader(endpoint="ep", options=OPTIONS).load_data(inputs, extra_info={"team": "ops"})
    assert {(d.metadata["source"], d.metadata["page"]): d.text for d in documents} == converted
    assert {d.metadata["team"] for d in documents} == {"ops"}


def test_haystack_converter_in_process_gives_convert_s_pages(
    tiny_engine: LlamaCppEngine, inputs: list[Path], converted: dict
) -> None:
    from haystack import Pipeline

    from pagescribe.integrations.haystack import PagescribeConverter

    pipeline = Pipeline()
    pipeline.add_component("convert", PagescribeConverter(client=tiny_engine, options=OPTIONS))
    documents = pipeline.run({"convert": {"sources": inputs}})["convert"]["documents"]
    assert {(d.meta["source"], d.meta["page"]): d.content for d in documents} == converted


def test_chunk_mode_gives_section_chunks_with_pages_and_headings(
    tiny_engine: LlamaCppEngine, inputs: list[Path]
) -> None:
    from pagescribe.integrations.langchain import PagescribeLoader

    chunks = ChunkOptions(by="section", size=12, overlap=2)
    docs = PagescribeLoader(inputs[:1], client=tiny_engine, options=OPTIONS, mode="chunk", chunks=chunks).load()
    assert docs and all(d.metadata["pages"] and set(d.metadata["pages"]) <= {1, 2} for d in docs)
    assert all(d.metadata["tokens"] <= 12 and isinstance(d.metadata["headings"], list) for d in docs)
    assert [d.metadata["chunk"] for d in docs] == list(range(len(docs)))
