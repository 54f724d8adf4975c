"""A small bounded cache of vectors: the store keeps recent query and text embeddings.

Why: a chat turn searches with the user's message and the pipeline then embeds the same
text; an add of text the process just saw needs no model call. Least recently used
entries go first; entries are copies, so a row of a batch's matrix never keeps the whole
matrix alive.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

__all__ = ["VectorCache"]


class VectorCache:
    """Thread-safe LRU of vectors by key (query text, content hash)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vector = self._items.get(key)
                if vector is not None:
                    self._items.move_to_end(key)
                    found[key] = vector
        return found

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
            return vector

    def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self._lock:
            for key, vector in items:
                if key in self._items:
                    self._items.move_to_end(key)
                else:
                    self._items[key] = vector.copy()
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
