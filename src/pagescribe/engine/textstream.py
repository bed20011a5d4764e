"""Turn token bytes into text pieces safe to send: whole UTF-8 characters, stop strings cut off and held back."""

from __future__ import annotations

import codecs


class TextStream:
    """Feed token bytes with ``push``; it returns the text that can be emitted now.

    Bytes that end mid-character wait for the rest; text that could be the start of a stop string waits until
    it is clear either way. ``stopped`` turns true when a stop string appears; the stop string is not emitted.
    """

    def __init__(self, stop: tuple[str, ...] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = tuple(s for s in stop if s)
        self._text = ""
        self._emitted = 0
        self.stopped = False

    @property
    def text(self) -> str:
        """Everything emitted so far."""
        return self._text[: self._emitted]

    def push(self, data: bytes) -> str:
        if self.stopped:
            return ""
        self._text += self._decoder.decode(data)
        return self._release()

    @property
    def pending(self) -> bool:
        """Whether bytes of a character split across tokens wait for the rest."""
        return bool(self._decoder.getstate()[0])

    def finish(self, *, complete_only: bool = False) -> str:
        """Flush what is held back at the end of generation (a partial stop string is ordinary text). With
        ``complete_only``, the bytes of a character still incomplete are left out instead of becoming U+FFFD."""
        if self.stopped:
            return ""
        if not complete_only:
            self._text += self._decoder.decode(b"", final=True)
        return self._take(len(self._text))

    def _release(self) -> str:
        search_from = max(0, self._emitted - max((len(s) for s in self._stop), default=0))
        cut = min(
            (i for i in (self._text.find(s, search_from) for s in self._stop) if i >= 0),
            default=-1,
        )
        if cut >= 0:
            self.stopped = True
            self._text = self._text[:cut]
            return self._take(cut)
        return self._take(len(self._text) - self._held_back())

    def _held_back(self) -> int:
        """Length of the longest tail of the text that is a proper prefix of a stop string."""
        longest = 0
        for stop in self._stop:
            for n in range(min(len(stop) - 1, len(self._text)), longest, -1):
                if self._text.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def _take(self, end: int) -> str:
        end = max(end, self._emitted)
        piece = self._text[self._emitted : end]
        self._emitted = end
        return piece
