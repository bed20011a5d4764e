"""TGI's ``truncate``: keep only the last N tokens of a request's text, so a long prompt fits instead of failing.

Text is dropped from the front (the earliest text first, across messages); images are kept whole. What is kept is
the text of the kept tokens, so the prompt built from it tokenizes to (about) those tokens again.
"""

from __future__ import annotations

from collections.abc import Callable

from pagescribe.types import ImagePart, Message, Part, TextPart

Tokenize = Callable[[str], list[int]]
Piece = Callable[[int], bytes]


def truncate_text(
    messages: tuple[Message, ...], limit: int, *, tokenize: Tokenize, piece: Piece
) -> tuple[Message, ...]:
    """``messages`` with the text cut to its last ``limit`` tokens (unchanged when it already fits)."""
    budget, cut = limit, False
    kept: list[list[Part]] = [[] for _ in messages]
    for m in range(len(messages) - 1, -1, -1):
        for part in reversed(messages[m].parts):
            if isinstance(part, ImagePart):
                kept[m].append(part)
                continue
            tokens = tokenize(part.text) if budget > 0 else [0]
            if len(tokens) <= budget:
                kept[m].append(part)
            else:
                cut = True
                if budget > 0:
                    tail = b"".join(piece(t) for t in tokens[-budget:]).decode("utf-8", "ignore").lstrip(" ")
                    kept[m].append(TextPart(tail))
            budget = max(0, budget - len(tokens))
    if not cut:
        return messages
    return tuple(Message(message.role, tuple(reversed(parts))) for message, parts in zip(messages, kept, strict=True))
