"""A least-recently-used map bounded by the bytes of its values (0 bytes disables it)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    """``put`` evicts the least recently used values until the total fits ``max_bytes``; a value larger than the
    whole budget is not kept. ``hits`` and ``misses`` count ``get`` outcomes, for tests."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return found[0]

    def __iter__(self) -> Iterator[K]:
        """Keys from least to most recently used (iterating does not change the order)."""
        return iter(list(self._items))

    def put(self, key: K, value: V, nbytes: int) -> None:
        if nbytes > self.max_bytes or key in self._items:
            return
        self._items[key] = (value, nbytes)
        self.bytes += nbytes
        while self.bytes > self.max_bytes:
            _, (_, size) = self._items.popitem(last=False)
            self.bytes -= size

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
