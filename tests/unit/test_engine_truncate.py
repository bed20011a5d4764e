"""TGI's truncate (the last N tokens of a request's text kept, images whole) and the logprobs an answer keeps (the
tokens of its text, not of a stop string)."""

from __future__ import annotations

from pagescribe.engine.slots import emitted
from pagescribe.engine.truncate import truncate_text
from pagescribe.types import ImageInput, ImagePart, Message, TextPart, TokenLogprob

IMAGE = ImageInput(1, 1, b"\x00\x00\x00")


def tokenize(text: str) -> list[int]:
    """One token per word (its index in the text stands in for its id)."""
    return list(range(len(text.split())))


def cut(messages: tuple[Message, ...], limit: int) -> list[list[str]]:
    words: dict[int, str] = {}

    def tokens(text: str) -> list[int]:
        words.clear()
        words.update(enumerate(text.split()))
        return tokenize(text)

    out = truncate_text(messages, limit, tokenize=tokens, piece=lambda t: (" " + words[t]).encode())
    return [[p.text if isinstance(p, TextPart) else "<image>" for p in m.parts] for m in out]


def test_the_earliest_text_goes_and_images_stay() -> None:
    messages = (
        Message("system", (TextPart("be brief now"),)),
        Message("user", (TextPart("one two three"), ImagePart(IMAGE), TextPart("four five"))),
    )
    assert cut(messages, 100) == [["be brief now"], ["one two three", "<image>", "four five"]]
    assert cut(messages, 3) == [[], ["three", "<image>", "four five"]]
    assert cut(messages, 2) == [[], ["<image>", "four five"]]
    assert cut(messages, 1) == [[], ["<image>", "five"]]


def test_an_answer_keeps_the_logprobs_of_its_text_only() -> None:
    entries = [TokenLogprob(t, -1.0, t.encode()) for t in ("Hel", "lo", " EN", "D")]
    assert [e.token for e in emitted(entries, "Hello")] == ["Hel", "lo"]  # " END" was a stop string
    assert [e.token for e in emitted(entries, "Hello END")] == ["Hel", "lo", " EN", "D"]
    assert emitted(entries, "") == ()
