"""Prompts kept as data: packaged ones by name (``document``), or any text file by path.

A prompt's id is its name plus a short hash of its text, so every output record says exactly which words the
model was given, and an edited prompt never reuses results cached for the old wording.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pagescribe.errors import InvalidRequest

DEFAULT_PROMPT = "document"


@dataclass(frozen=True, slots=True)
class Prompt:
    """Prompt text and its id (``name-<12 hex digits of sha256(text)>``)."""

    id: str
    text: str

    @classmethod
    def from_text(cls, text: str, *, name: str) -> Prompt:
        """Build a prompt from text; surrounding blank lines are dropped, the words are kept as they are."""
        body = text.strip("\r\n")
        if not body.strip():
            raise InvalidRequest(f"the prompt {name!r} is empty", param="prompt")
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
        return cls(id=f"{name}-{digest}", text=body)


def packaged_prompts() -> list[str]:
    """Names of the prompts shipped with pagescribe for users to pick (a model family's own document prompt is
    picked with the family: ``family_prompt``)."""
    folder = resources.files(__name__)
    return sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))


def load_prompt(name_or_path: str | Path = DEFAULT_PROMPT) -> Prompt:
    """Load a packaged prompt by name, or a prompt file (UTF-8 text) by path.

    Raises ``InvalidRequest`` naming the file, or the packaged names, when neither matches.
    """
    path = Path(name_or_path)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"cannot read the prompt file {path}: {exc}", param="prompt") from exc
        return Prompt.from_text(text, name=path.stem)
    name = str(name_or_path)
    resource = resources.files(__name__).joinpath(f"{name}.txt")
    if "/" in name or "\\" in name or not resource.is_file():
        known = ", ".join(packaged_prompts())
        raise InvalidRequest(
            f"no prompt file {name!r} and no packaged prompt of that name (packaged: {known})", param="prompt"
        )
    return Prompt.from_text(resource.read_text(encoding="utf-8"), name=name)


def family_prompt(name: str) -> Prompt:
    """A model family's own document prompt (``prompts/families/NAME.txt``)."""
    resource = resources.files(__name__).joinpath(f"families/{name}.txt")
    if "/" in name or not resource.is_file():
        raise InvalidRequest(f"no packaged family prompt {name!r}", param="prompt")
    return Prompt.from_text(resource.read_text(encoding="utf-8"), name=name)


__all__ = ["DEFAULT_PROMPT", "Prompt", "family_prompt", "load_prompt", "packaged_prompts"]
