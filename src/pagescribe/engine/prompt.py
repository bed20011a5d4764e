"""Build the prompt from the model's chat template, keeping request text apart from template text.

The template is rendered with a sentinel in place of every request text part and image. The rendered string is
then split back into pieces: template text (tokenized with special-token parsing), request text (tokenized as
plain text, so ``</s>``, ``[INST]`` or a media marker typed by a user stay words), and images. This is how user
text that imitates special tokens or media markers is neutralised without altering a character of it.

A dialog that ends with an assistant message asks for that message to be continued: the dialog before it is
rendered with the generation prompt, and the message's text follows as a ``prefix`` piece (no end-of-turn token),
so the model goes on from where that text stops. This is how a client continues an answer a time limit cut.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Literal

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pagescribe.errors import EngineError, InvalidRequest, ModelInvalid
from pagescribe.types import ImageInput, ImagePart, Message

IMAGE_PLACEHOLDER = "<__image__>"


def default_chat_template() -> str:
    """LLaVA-1.5's conversation format, used when the GGUF carries no ``tokenizer.chat_template``."""
    return resources.files("pagescribe").joinpath("templates/llava-1.5.jinja").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class PromptPiece:
    """Template text, request text, an image, or the beginning of the answer to continue (``prefix``, last)."""

    kind: Literal["template", "text", "image", "prefix"]
    text: str = ""
    image: ImageInput | None = None


class ChatTemplate:
    """A compiled chat template; ``render`` returns the prompt as an ordered list of pieces."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str, bos_added: bool = False) -> None:
        """``bos_added``: the tokenizer puts BOS in front of the prompt itself, so a template that writes
        ``bos_token`` first (Gemma's) must not give it a second one."""
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        try:
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise ModelInvalid(f"the chat template does not compile: {exc}") from exc
        self._bos = bos_token
        self._eos = eos_token
        self._strip_bos = bos_added and bool(bos_token)

    def render(self, messages: tuple[Message, ...]) -> list[PromptPiece]:
        if len(messages) > 1 and messages[-1].role == "assistant":
            if messages[-1].images:
                raise InvalidRequest("an assistant message to continue cannot carry images")
            return [*self._render(messages[:-1]), PromptPiece("prefix", messages[-1].text)]
        return self._render(messages)

    def _render(self, messages: tuple[Message, ...]) -> list[PromptPiece]:
        nonce = secrets.token_hex(6)
        texts: list[str] = []
        images: list[ImageInput] = []
        rendered_messages = [_sentinel_message(m, nonce, texts, images) for m in messages]
        try:
            rendered = self._template.render(
                messages=rendered_messages,
                add_generation_prompt=True,
                bos_token=self._bos,
                eos_token=self._eos,
                raise_exception=_raise,
                strftime_now=lambda fmt: datetime.now().strftime(fmt),
            )
        except _TemplateRaised as exc:
            raise InvalidRequest(f"the model's chat template rejected the dialog: {exc}") from exc
        except TemplateError as exc:
            raise EngineError(f"the chat template failed to render: {exc}") from exc
        if self._strip_bos:
            rendered = rendered.removeprefix(self._bos)
        return _split(rendered, nonce, texts, images)


class _TemplateRaised(Exception):
    pass


def _raise(message: str) -> None:
    raise _TemplateRaised(message)


def _sentinel_message(
    message: Message, nonce: str, texts: list[str], images: list[ImageInput]
) -> dict[str, Any]:
    content = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            content.append(f"\x1fI{nonce}:{len(images)}\x1f")
            images.append(part.image)
        elif part.text:
            content.append(f"\x1fT{nonce}:{len(texts)}\x1f")
            texts.append(part.text)
    return {"role": message.role, "content": "".join(content)}


def _split(rendered: str, nonce: str, texts: list[str], images: list[ImageInput]) -> list[PromptPiece]:
    pattern = re.compile(f"\x1f([TI]){nonce}:(\\d+)\x1f")
    pieces: list[PromptPiece] = []
    seen_images = 0
    pos = 0
    for match in pattern.finditer(rendered):
        if match.start() > pos:
            pieces.append(PromptPiece("template", rendered[pos : match.start()]))
        index = int(match.group(2))
        if match.group(1) == "T":
            pieces.append(PromptPiece("text", texts[index]))
        else:
            pieces.append(PromptPiece("image", image=images[index]))
            seen_images += 1
        pos = match.end()
    if pos < len(rendered):
        pieces.append(PromptPiece("template", rendered[pos:]))
    if seen_images != len(images):
        raise InvalidRequest(
            f"the model's chat template placed {seen_images} of {len(images)} images; "
            "put images in user messages"
        )
    return pieces


def pieces_to_text(pieces: list[PromptPiece]) -> str:
    """The prompt as a string, each image shown as ``<__image__>`` (for logs and tests); a prefix to continue
    follows as it is."""
    return "".join(IMAGE_PLACEHOLDER if p.kind == "image" else p.text for p in pieces)
