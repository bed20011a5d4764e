"""Prompts as data: the packaged document prompt, prompt files, and ids that change with the words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pagescribe.errors import InvalidRequest
from pagescribe.prompts import DEFAULT_PROMPT, load_prompt, packaged_prompts


def test_the_default_prompt_is_the_document_prompt_users_know() -> None:
    prompt = load_prompt()
    assert DEFAULT_PROMPT == "document" and "document" in packaged_prompts()
    lines = prompt.text.splitlines()
    assert lines[0].startswith("You will be provided with an image of a pdf page or a slide.")
    assert lines[-1] == "DO NOT mention page numbers or the position of the elements on the image."
    assert 'say something like "the prices are the following: A for X, B for Y..."' in prompt.text
    assert re.fullmatch(r"document-[0-9a-f]{12}", prompt.id)


def test_a_prompt_file_loads_by_path_and_its_id_follows_its_words(tmp_path: Path) -> None:
    first = tmp_path / "invoice.txt"
    first.write_text("Transcribe the invoice.\n", encoding="utf-8")
    second = tmp_path / "invoice2.txt"
    second.write_text("Transcribe the invoice, keeping amounts.\n", encoding="utf-8")
    a, a_again, b = load_prompt(first), load_prompt(str(first)), load_prompt(second)
    assert a.text == "Transcribe the invoice."
    assert a.id.startswith("invoice-") and a.id == a_again.id
    assert b.id.split("-")[1] != a.id.split("-")[1]


def test_an_unknown_prompt_name_lists_the_packaged_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"packaged: .*document"):
        load_prompt("no-such-prompt")


def test_an_empty_prompt_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match="empty"):
        load_prompt(empty)
