"""Users' partitions (vectors + keyword statistics), loaded on demand, kept under a budget.

A partition is a function of one user's rows in SQL: loaded on the user's first search,
checked fresh before every search (one indexed lookup of the user's version, which every
write bumps in its own transaction), reloaded when another process wrote, and updated in
place by this process's own adds and deletes. Entity links come from ``lpm_memory_entities``
(the extractor's and the chat model's names alike), never from re-reading the text.
Partitions live in an LRU bounded by a byte budget, so a process holds what its recent
users cost, not what the store holds: opening a store reads nothing, whatever its size.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..entities import entity_key
from ..errors import EmbeddingMismatchError, InvalidInputError
from ..retrieval.dates import mentions_time
from ..retrieval.hybrid import Facts
from ..retrieval.rerank import is_question
from .index import VectorPartition, best_first
from .keyword import KeywordIndex, analyse_many, query_phrases, query_terms
from .reader import LoadedRow, Reader

__all__ = ["DEFAULT_MEMORY_BUDGET", "MEMORY_BUDGET_ENV", "IndexInfo", "PartitionView",
           "Partitions", "UserPartition", "parse_budget"]

MEMORY_BUDGET_ENV = "LPM_MEMORY_BUDGET"
DEFAULT_MEMORY_BUDGET = 1 << 30  # 1 GiB: ~600k 384-dim memories with their statistics
_ROW_OVERHEAD = 420  # bytes per memory besides its vector: facts, dict entries, key
_POSTING_BYTES = 90  # per (term, memory) entry of the keyword statistics


def parse_budget(value: int | str | None) -> int:
    """Bytes from ``1073741824``, ``"512MB"``, ``"2GiB"``…; None reads ``$LPM_MEMORY_BUDGET``."""
    if value is None:
        value = os.environ.get(MEMORY_BUDGET_ENV) or DEFAULT_MEMORY_BUDGET
    if isinstance(value, str):
        text = value.strip().upper().removesuffix("B").removesuffix("I")
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
        try:
            value = int(float(text[:-1] if scale > 1 else text) * scale)
        except ValueError:
            raise InvalidInputError(f"memory_budget {value!r} is not a size like '512MB'",
                                    field="memory_budget") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("memory_budget must be a number of bytes >= 0",
                                field="memory_budget")
    return value


@dataclass(frozen=True)
class IndexInfo:
    """What a process holds in memory: users loaded, their memories and estimated bytes."""

    users_loaded: int
    vectors: int
    bytes: int
    budget: int


class UserPartition:
    """One user's vectors (current and superseded), keyword statistics and facts."""

    def __init__(self, user_id: str, version: int, dim: int) -> None:
        self.user_id = user_id
        self.version = version
        self.dim = dim
        self.current = VectorPartition(dim)
        self.superseded = VectorPartition(dim)
        self.keywords = KeywordIndex()
        self.facts: dict[int, Facts] = {}
        self.is_current: dict[int, bool] = {}
        self.by_digest: dict[str, int] = {}  # content hash -> pk, current memories
        self.by_entity: dict[str, set[int]] = {}  # entity key -> memories naming it
        # alias key -> entity key -> how many memories give that alias ("mel" -> "melanie")
        self.by_alias: dict[str, dict[str, int]] = {}
        self.alias_links: dict[int, tuple[tuple[str, str], ...]] = {}  # pk -> (alias, key)
        self.lock = threading.RLock()

    def upsert(self, rows: Iterable[LoadedRow]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self.lock:
            self.remove([r[0] for r in rows if r[0] in self.facts])
            for flag, part in ((True, self.current), (False, self.superseded)):
                chosen = [r for r in rows if r[5] is flag]
                if chosen:
                    vectors = np.stack([r[7] for r in chosen]).astype(np.float32, copy=False)
                    if vectors.shape[1] != self.dim:
                        raise EmbeddingMismatchError(
                            f"stored vectors of user {self.user_id!r} have {vectors.shape[1]}"
                            f" dimensions, not {self.dim}")
                    part.add(np.fromiter((r[0] for r in chosen), np.int64, len(chosen)),
                             np.ascontiguousarray(vectors))
            analysed = analyse_many([r[2] for r in rows])
            for (pk, session, content, when, importance, current, digest, _, links), stats \
                    in zip(rows, analysed):
                subject = next((key for key, about, _ in links if about), None)
                self.facts[pk] = Facts(session, when, importance, is_question(content),
                                       subject, frozenset(key for key, _, _ in links
                                                          if key != subject),
                                       mentions_time(content), stats[0])
                for key, _, _ in links:
                    self.by_entity.setdefault(key, set()).add(pk)
                named = tuple(dict.fromkeys((entity_key(alias), key) for key, _, aliases
                                            in links for alias in aliases))
                if named:
                    self.alias_links[pk] = named
                    for alias, key in named:
                        counts = self.by_alias.setdefault(alias, {})
                        counts[key] = counts.get(key, 0) + 1
                self.is_current[pk] = current
                self.keywords.add(pk, stats)
                if current:
                    self.by_digest[digest] = pk

    def remove(self, pks: list[int]) -> None:
        with self.lock:
            gone = [pk for pk in pks if pk in self.facts]
            if not gone:
                return
            self.current.remove(np.asarray(gone, dtype=np.int64))
            self.superseded.remove(np.asarray(gone, dtype=np.int64))
            self.keywords.remove(gone)
            for pk in gone:
                fact = self.facts.pop(pk)
                for key in fact.mentions if fact.subject is None else \
                        (fact.subject, *fact.mentions):
                    holders = self.by_entity.get(key)
                    if holders is not None:
                        holders.discard(pk)
                        if not holders:
                            del self.by_entity[key]
                del self.is_current[pk]
                for alias, key in self.alias_links.pop(pk, ()):
                    counts = self.by_alias[alias]
                    counts[key] -= 1
                    if not counts[key]:
                        del counts[key]
                        if not counts:
                            del self.by_alias[alias]
            if self.by_digest:
                dropped = set(gone)
                self.by_digest = {h: pk for h, pk in self.by_digest.items()
                                  if pk not in dropped}

    def retire(self, pk: int) -> bool:
        """Move a current memory to the superseded ones (False: it is not held as current)."""
        with self.lock:
            if not self.is_current.get(pk):
                return False
            vector = self.current.rows([pk])
            self.current.remove(np.array([pk], dtype=np.int64))
            self.superseded.add(np.array([pk], dtype=np.int64), vector)
            self.is_current[pk] = False
            self.by_digest = {h: p for h, p in self.by_digest.items() if p != pk}
            return True

    def entity_links(self) -> dict[int, tuple[str | None, frozenset[str]]]:
        """Every memory's (subject, other entity keys) as ranking sees them, for checks."""
        with self.lock:
            return {pk: (f.subject, f.mentions) for pk, f in self.facts.items()}

    def alias_keys(self) -> dict[int, frozenset[tuple[str, str]]]:
        """Every memory's (alias key, entity key) pairs as ranking sees them, for checks."""
        with self.lock:
            return {pk: frozenset(pairs) for pk, pairs in self.alias_links.items()}

    def size(self) -> int:
        return len(self.facts)

    def snapshot(self) -> dict[int, tuple[bool, np.ndarray, int]]:
        """Every memory held, by pk: (current, vector copy, keyword length), for checks."""
        with self.lock:
            out: dict[int, tuple[bool, np.ndarray, int]] = {}
            for flag, part in ((True, self.current), (False, self.superseded)):
                ids, vecs = part.live()
                for pk, vec in zip(ids.tolist(), vecs):
                    out[pk] = (flag, vec.copy(), self.keywords.length(pk))
            return out

    def nbytes(self) -> int:
        """An estimate of the memory this partition holds."""
        n = len(self.facts)
        return n * (4 * self.dim + _ROW_OVERHEAD) + _POSTING_BYTES * \
            self.keywords.postings_count()

    def vector_of(self, digest: str) -> np.ndarray | None:
        """The stored vector of a current memory with this text (a copy)."""
        with self.lock:
            pk = self.by_digest.get(digest)
            return None if pk is None else self.current.rows([pk])[0].copy()

    def view(self, include_superseded: bool, allowed: np.ndarray | None) -> PartitionView:
        return PartitionView(self, include_superseded, allowed)


class PartitionView:
    """The memories one search may see: current (or all), restricted to ``allowed`` pks.

    Implements ``retrieval.hybrid.CandidatePool``; use it while holding the partition's
    lock.
    """

    def __init__(self, part: UserPartition, include_superseded: bool,
                 allowed: np.ndarray | None) -> None:
        self._part = part
        self._parts = [part.current, part.superseded] if include_superseded else [part.current]
        self._allowed = allowed
        self._allowed_set = None if allowed is None else set(allowed.tolist())
        self._superseded = include_superseded

    def visible(self, pk: int) -> bool:
        current = self._part.is_current.get(pk)
        if current is None or (not current and not self._superseded):
            return False
        return self._allowed_set is None or pk in self._allowed_set

    def dense(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self._part.dim:
            raise EmbeddingMismatchError(
                f"query vector has {query.shape[1]} dimensions, the index {self._part.dim}")
        hits: list[tuple[int, float]] = []
        for part in self._parts:
            hits += part.search_one(query, n, self._allowed)
        hits.sort(key=best_first)
        return hits[:n]

    def keyword(self, query: str, n: int) -> dict[int, float]:
        terms = query_terms(query)
        if not terms:
            return {}
        return self._part.keywords.search(terms, query_phrases(query), n, self.visible)

    def vectors(self, pks: list[int]) -> np.ndarray:
        part = self._part
        current = part.current.pos
        if all(pk in current for pk in pks):  # the common case: no superseded candidate
            return part.current.rows(pks)
        rows = np.empty((len(pks), part.dim), dtype=np.float32)
        for flag, source in ((True, part.current), (False, part.superseded)):
            at = [i for i, pk in enumerate(pks) if (pk in current) is flag]
            if at:
                rows[at] = source.rows([pks[i] for i in at])
        return rows

    def facts(self, pk: int) -> Facts:
        return self._part.facts[pk]

    def neighbours(self, pks: list[int], span: int) -> list[int]:
        facts = self._part.facts
        out: list[int] = []
        for pk in pks:
            session = facts[pk].session_id
            if session is None:
                continue
            for near in range(pk - span, pk + span + 1):
                fact = facts.get(near)
                if near != pk and fact is not None and fact.session_id == session \
                        and self.visible(near):
                    out.append(near)
        return list(dict.fromkeys(out))

    def knows_entity(self, key: str) -> bool:
        return key in self._part.by_entity or key in self._part.by_alias

    def entity_keys(self, key: str) -> set[str]:
        """The entities a name in a query means: the entity ``key`` and those it is an
        alias of ("mel" -> melanie, "sister" -> anna)."""
        found = set(self._part.by_alias.get(key, ()))
        if key in self._part.by_entity:
            found.add(key)
        return found

    def entity_members(self, key: str, limit: int) -> list[int] | None:
        holders = self._part.by_entity.get(key, ())
        if len(holders) > limit:
            return None
        return sorted(pk for pk in holders if self.visible(pk))


class Partitions:
    """The LRU of loaded partitions under a byte budget, kept fresh against SQL."""

    def __init__(self, reader: Reader, budget: int) -> None:
        self._reader = reader
        self.budget = budget
        self._parts: OrderedDict[str, UserPartition] = OrderedDict()
        self._bytes: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str) -> UserPartition | None:
        """The user's partition, fresh as of this call (None: the user has no memories)."""
        with self._lock:
            part = self._parts.get(user_id)
            if part is not None:
                self._parts.move_to_end(user_id)
        if part is not None:
            if self._reader.version(user_id) == part.version:
                return part
            self.drop(user_id)
        version, rows = self._reader.load(user_id)
        if version is None or not rows:
            return None
        part = UserPartition(user_id, version, int(rows[0][7].shape[0]))
        part.upsert(rows)
        self._keep(part)
        return part

    def cached(self, user_id: str) -> UserPartition | None:
        """The loaded partition, fresh or not (its vectors by text are right either way)."""
        with self._lock:
            return self._parts.get(user_id)

    def _keep(self, part: UserPartition) -> None:
        with self._lock:
            self._parts[part.user_id] = part
            self._bytes[part.user_id] = part.nbytes()
            self._evict()

    def _evict(self) -> None:
        total = sum(self._bytes.values())
        while total > self.budget and len(self._parts) > 1:
            user_id, _ = self._parts.popitem(last=False)
            total -= self._bytes.pop(user_id)

    def apply_own(self, user_id: str, version: int,
                  change: Callable[[UserPartition], bool]) -> None:
        """After this process committed ``version`` of a user: update the loaded partition
        in place if it held the version just before (``change`` returns False when it
        cannot), otherwise drop it (the next search reloads)."""
        part = self.cached(user_id)
        if part is None:
            return
        with part.lock:
            if part.version == version - 1 and change(part):
                part.version = version
                with self._lock:
                    if user_id in self._bytes:
                        self._bytes[user_id] = part.nbytes()
                        self._evict()
                return
        self.drop(user_id)

    def drop(self, user_id: str) -> None:
        with self._lock:
            self._parts.pop(user_id, None)
            self._bytes.pop(user_id, None)

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._bytes.clear()

    close = clear  # on the store's close: release the memory

    def info(self, user_id: str | None = None) -> IndexInfo:
        """Everything loaded, or only ``user_id``'s partition (as loaded, fresh or not)."""
        with self._lock:
            users = list(self._parts) if user_id is None else \
                [u for u in (user_id,) if u in self._parts]
            return IndexInfo(users_loaded=len(users),
                             vectors=sum(self._parts[u].size() for u in users),
                             bytes=sum(self._bytes[u] for u in users), budget=self.budget)

    def loaded_users(self) -> list[str]:
        with self._lock:
            return list(self._parts)
