"""Text normalisation for scoring: what a reader would not call a difference is removed before any comparison.

Both sides of every comparison (the reference or a check's text, and a backend's output) go through ``normalize``,
so an aggressive rule costs nothing: case, Unicode forms (ligatures, full-width letters), typographic quotes and
dashes, Markdown and simple HTML markup, words hyphenated across a line break and runs of whitespace are all
made equal; an underscore separates words (``GPVAL_X_MIN`` is three words, as in a text layer that lost the
underscores TeX draws as rules). ``words`` cuts normalised text into the words that word recall counts.
"""

from __future__ import annotations

import re
import unicodedata

_REPLACEMENTS = str.maketrans(
    {
        "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": None,
        "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"',
        "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-",
        "*": None, "_": " ", "|": " ", "\u00a0": " ", "\t": " ",
    }
)  # fmt: skip
# A word broken at a line end: PDFium marks the break with \x02 or a soft hyphen, others with a plain hyphen.
_HYPHENATED = re.compile(r"([^\W\d_])(?:-|\x02|\u00ad)[ \t]*\n\s*([^\W\d_])")
_SOFT_HYPHEN = re.compile(r"[\x02\u00ad]")
# Control and private-use characters: what a PDF font without a Unicode map gives for bullets and symbols.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff]")
_HTML_BREAK = re.compile(r"<br\s*/?>|</?(?:p|div|tr|table|thead|tbody|h[1-6]|li|ul|ol)\b[^>]*>", re.IGNORECASE)
_HTML_INLINE = re.compile(r"</?(?:b|i|em|strong|u|span|sup|sub|td|th|code)\b[^>]*>", re.IGNORECASE)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*(?:[-+*•▪◦‣][ \t]+|>[ \t]?)", re.MULTILINE)
_TABLE_RULE = re.compile(r"^[ \t|:-]*-{3,}[ \t|:-]*$", re.MULTILINE)
_FENCE = re.compile(r"^[ \t]*(?:```|~~~).*$", re.MULTILINE)
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+(?:[.,'’]\w+)*")


def normalize(text: str) -> str:
    """``text`` as compared: case-folded, markup-free, one space between words."""
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _HYPHENATED.sub(r"\1\2", text)
    text = _SOFT_HYPHEN.sub("", text)
    text = _UNPRINTABLE.sub(" ", text)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_INLINE.sub(" ", text)
    text = _FENCE.sub("", text)
    text = _TABLE_RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _ESCAPE.sub(r"\1", text)
    text = text.translate(_REPLACEMENTS)
    return _SPACE.sub(" ", text.casefold()).strip()


def normalize_lines(text: str) -> list[str]:
    """Each non-empty line of ``text`` normalised on its own (table rows, for the ``table`` check): HTML rows
    become lines and their cells are kept apart."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"</tr\s*>", "\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<t[dh]\b[^>]*>", " | ", text, flags=re.IGNORECASE)
    lines = (normalize(line) for line in text.split("\n"))
    return [line for line in lines if line]


def words(text: str) -> list[str]:
    """The words of ``text`` after normalisation (numbers like ``12.5`` and ``1,200`` stay one word)."""
    return _WORD.findall(normalize(text))
