"""Route llama.cpp's and libmtmd's C log into Python logging, and keep its recent errors for messages.

llama.cpp explains most failures only in its log (e.g. why an mmproj did not load); without this, users would
see "failed to load" and nothing else. Installed once per process; the callback is kept alive here.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from typing import Any

log = logging.getLogger("pagescribe.llama_cpp")

_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_recent: collections.deque[tuple[int, str]] = collections.deque(maxlen=20)
_counter = [0]
_lock = threading.Lock()
_installed: list[Any] = []
_last_level = [2]


def _on_log(level: int, text: bytes | None, _user_data: Any) -> None:
    message = (text or b"").decode("utf-8", errors="replace").rstrip("\n")
    if level == 5:  # GGML_LOG_LEVEL_CONT continues the previous line
        level = _last_level[0]
    _last_level[0] = level
    if not message.strip():
        return
    py_level = _LEVELS.get(level, logging.DEBUG)
    if py_level >= logging.WARNING:
        with _lock:
            _counter[0] += 1
            _recent.append((_counter[0], message.strip()))
    # warnings of the loader are routine (e.g. "ffn up/down are swapped"); keep them out of user-facing logs
    log.log(logging.DEBUG if py_level < logging.ERROR else logging.WARNING, "%s", message)


def install() -> None:
    """Point every native logger at ``_on_log``. Idempotent."""
    if _installed:
        return
    import llama_cpp
    from llama_cpp import mtmd_cpp

    callback = llama_cpp.llama_log_callback(_on_log)
    _installed.append(callback)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_log_set(callback, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_helper_log_set(callback, ctypes.c_void_p(0))


def mark() -> int:
    """A position in the recent-messages buffer; pass it to ``since``."""
    with _lock:
        return _counter[0]


def since(position: int) -> str:
    """The warnings and errors logged after ``mark()`` returned ``position``, joined for an error message."""
    with _lock:
        return "; ".join(message for seq, message in _recent if seq > position)
