"""Saved prefixes: KV state of prompt prefixes that several requests shared, kept in host memory.

The slots' own cells are the first prefix cache. A burst of unrelated requests can overwrite every slot, and the
next page would evaluate the shared instructions again (~2.5 s on the 1b preset, ~18 s on a 7B model on 2 cores).
So before the last slot holding a prefix that other requests reused lets it go, that prefix's cells are saved
(``llama_state_seq_get_data``), and a later prompt that starts with it gets them back with a memory copy.
"""

from __future__ import annotations

from typing import Any

from pagescribe.engine.lru import ByteLRU
from pagescribe.engine.tokens import Key, common_prefix, span

# A prefix is worth saving when a request reused at least this many positions of it (more than a chat template).
MIN_SHARED_POSITIONS = 64


class SavedPrefixes:
    """KV states by the keys they hold, least recently used dropped first, bounded by bytes (0 disables it)."""

    def __init__(self, max_bytes: int) -> None:
        self.states: ByteLRU[tuple[Key, ...], Any] = ByteLRU(max_bytes)

    @property
    def enabled(self) -> bool:
        return self.states.max_bytes > 0

    def best(self, keys: list[Key]) -> tuple[tuple[Key, ...], int, int]:
        """The saved prefix sharing the most with ``keys``: (its keys, n_keys shared, n_positions), or ((), 0, 0).

        As with the slots, at least the last key of ``keys`` is left to evaluate. Looking does not count as use.
        """
        found: tuple[Key, ...] = ()
        best_n = 0
        for saved in self.states:
            n = min(common_prefix(saved, keys), len(keys) - 1)
            if n > best_n:
                found, best_n = saved, n
        return found, best_n, sum(span(k) for k in keys[:best_n])

    def state(self, saved: tuple[Key, ...]) -> Any:
        """The KV state saved for ``saved`` (a key ``best`` returned), marked as recently used."""
        return self.states.get(saved)

    def covers(self, keys: list[Key]) -> bool:
        """Whether a saved state already holds all of ``keys``."""
        return any(common_prefix(saved, keys) >= len(keys) for saved in self.states)

    def put(self, keys: list[Key], state: Any) -> None:
        self.states.put(tuple(keys), state, len(state))

    def clear(self) -> None:
        self.states.clear()
