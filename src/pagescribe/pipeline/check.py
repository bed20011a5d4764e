"""Is a transcription usable? Catches the two ways small vision models fail on a page: nothing, or a loop.

A loop is the end of the text repeating one unit over and over (a word, a line, a table row) until the token
budget runs out. Short units must repeat over a long span before they count, so a Markdown rule (``---``) or a
legitimately repeated table cell is not a loop; long units must repeat at least ``min_repeats`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pagescribe.types import ImageInput


@dataclass(frozen=True, slots=True)
class LoopRule:
    """A repeated tail counts as a loop when it covers ``min_span`` characters and ``min_repeats`` copies."""

    min_span: int = 120
    min_repeats: int = 4
    max_unit: int = 400


DEFAULT_LOOP_RULE = LoopRule()


def check_output(text: str, *, rule: LoopRule = DEFAULT_LOOP_RULE) -> str | None:
    """``None`` when the text is usable, else why not (``"empty output"``, ``"repetition loop: ..."``)."""
    body = text.strip()
    if not body:
        return "empty output"
    loop = find_loop(body, rule=rule)
    if loop is not None:
        unit, repeats = loop
        shown = unit.strip()[:40] or repr(unit[:10])
        return f"repetition loop: {shown!r} repeated {repeats} times"
    return None


def find_loop(text: str, *, rule: LoopRule = DEFAULT_LOOP_RULE) -> tuple[str, int] | None:
    """The repeating unit at the end of ``text`` and its repeat count, if it forms a loop under ``rule``."""
    # Whitespace at the seams of a loop varies ("a b a b a b " vs "a b\na b"); compare words, not layout.
    flat = " ".join(text.split())
    length = len(flat)
    for unit_len in range(1, min(rule.max_unit, length // rule.min_repeats) + 1):
        unit = flat[length - unit_len :]
        repeats = _tail_repeats(flat, unit)
        if repeats >= rule.min_repeats and repeats * unit_len >= rule.min_span:
            return unit, repeats
    return None


def _tail_repeats(text: str, unit: str) -> int:
    """How many back-to-back copies of ``unit`` end ``text``."""
    size = len(unit)
    count = 1
    end = len(text) - size
    while end >= size and text[end - size : end] == unit:
        count += 1
        end -= size
    return count


def is_blank(image: ImageInput, *, tolerance: int = 6) -> bool:
    """True for a page with no visible content: every pixel within ``tolerance`` of one colour."""
    pixels = np.frombuffer(image.rgb, dtype=np.uint8)
    if pixels.size == 0:
        return True
    return int(pixels.max()) - int(pixels.min()) <= tolerance
