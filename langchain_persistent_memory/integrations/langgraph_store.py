"""``PersistentStore``: LangGraph's ``BaseStore`` on the same database and FAISS index.

Design: item values live in ``lpm_kv_items`` (same SQL database as the memories). The text of
each indexed field becomes an ordinary memory of a per-namespace scope
(``langgraph:<namespace>``) tagged with the item's key, so semantic search is
``MemoryStore.search`` over that namespace's own FAISS partition; nothing is embedded,
stored or ranked here. Reads are answered from SQL; filters are applied to the JSON values.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)
from langgraph.store.base.embed import get_text_at_path
from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy import text as sql_text

from ..backend import MemoryBackend
from ..errors import InvalidInputError
from ..models import AddOp, DeleteOp, Operation
from ..scopes import NAMESPACE_PREFIX, NamespaceScope
from ..store import MemoryStore
from ..store.engine import run_write
from ..store.schema import history
from ._kv_items import (
    decode_namespace,
    encode_namespace,
    items,
    key_tag,
    kv_metadata,
    match_namespace,
    matches_filter,
    namespace_scope,
    scopes,
    validate_filter,
)

__all__ = ["PersistentStore"]

_MAX_K = 10_000
_HASHED = NAMESPACE_PREFIX + "#"
_RECORD_SCOPE = sql_text(f"INSERT INTO {scopes.name} (scope, namespace) "
                         "VALUES (:scope, :namespace) ON CONFLICT (scope) DO NOTHING")
# LangGraph scores are plain cosine similarities: no keyword fusion, date, entity, time or
# detail boost, no dedupe.
_COSINE: dict[str, Any] = {"mode": "dense", "date_boost": 0.0, "dedupe_threshold": None,
                           "entity_weight": 0.0, "hop_weight": 0.0, "time_boost": 0.0,
                           "detail_weight": 0.0}


class PersistentStore(BaseStore):
    """A LangGraph store that survives restarts, sharing a ``MemoryStore``'s database.

    Args:
        store: the ``MemoryStore`` whose database, embeddings and index are used. It must
            be in process: a ``MemoryClient`` of the memory service is refused with
            ``InvalidInputError(field="store")``, since the service never exposes
            namespaces (they are not users) nor the items' table.
        index: which fields are embedded for ``search(query=...)``: an ``IndexConfig``
            (``fields``; ``embed``/``dims`` must agree with the store's embeddings), ``None``
            for the whole value (``"$"``), or ``False`` to disable semantic search.
        ttl: LangGraph ``TTLConfig`` (``default_ttl`` minutes, ``refresh_on_read``).
            Expired items are never returned; :meth:`sweep_ttl` deletes them.
        clock: source of "now" for timestamps and expiry (tests, imports).
    """

    supports_ttl = True

    def __init__(self, store: MemoryStore, *, index: IndexConfig | Literal[False] | None = None,
                 ttl: TTLConfig | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        _require_local_store(store)
        self.store = store
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.ttl_config = ttl
        self.index_config = _check_index(store, index)
        self._fields = list(self.index_config.get("fields") or []) if self.index_config else []
        run_write(store.engine, lambda conn: kv_metadata.create_all(conn, checkfirst=True))

    # ------------------------------------------------------------------ batch
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run reads against the state before the batch, then its writes (last put wins)."""
        ops = list(ops)
        for op in ops:
            _validate(op)
        results: list[Result] = [None] * len(ops)
        now = self._clock()
        puts: dict[tuple[str, str], PutOp] = {}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = self._get(op, now)
            elif isinstance(op, SearchOp):
                results[i] = self._search(op, now)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op, now)
            elif isinstance(op, PutOp):
                puts[(encode_namespace(op.namespace), op.key)] = op
        if puts:
            self._put(puts, now)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    # ------------------------------------------------------------------ reads
    def _live(self, now: datetime) -> Any:
        return or_(items.c.expires_at.is_(None), items.c.expires_at > now)

    def _get(self, op: GetOp, now: datetime) -> Item | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(items).where(
                items.c.namespace == encode_namespace(op.namespace), items.c.key == op.key,
                self._live(now))).first()
        if row is None:
            return None
        if op.refresh_ttl:
            self._refresh([row], now)
        return _item(row)

    def _refresh(self, rows: Sequence[Any], now: datetime) -> None:
        if all(r.ttl_minutes is None for r in rows):
            return

        def body(conn: Connection) -> None:
            for row in rows:
                if row.ttl_minutes is not None:
                    conn.execute(update(items).where(items.c.pk == row.pk).values(
                        expires_at=now + timedelta(minutes=row.ttl_minutes)))
        run_write(self.store.engine, body)

    def _prefix_clause(self, prefix: tuple[str, ...]) -> Any:
        if not prefix:
            return True
        text = encode_namespace(prefix)
        return or_(items.c.namespace == text,
                   items.c.namespace.startswith(text + ".", autoescape=True))

    def _search(self, op: SearchOp, now: datetime) -> list[SearchItem]:
        validate_filter(op.filter)
        if op.limit < 0 or op.offset < 0:
            raise InvalidInputError("limit and offset must not be negative", field="limit")
        if op.query and self.index_config:
            found = self._semantic(op, now)
        else:
            found = [(row, None) for row in self._scan(op, now, op.offset + op.limit)]
            found = found[op.offset:]
        if op.refresh_ttl:
            self._refresh([row for row, _ in found], now)
        return [_item(row, score) for row, score in found]

    def _scan(self, op: SearchOp, now: datetime, stop: int | None,
              *extra: Any) -> list[Any]:
        """Rows under the prefix that pass the filter, newest first, up to ``stop``."""
        query = select(items).where(self._prefix_clause(op.namespace_prefix), self._live(now),
                                    *extra).order_by(items.c.updated_at.desc(), items.c.pk.desc())
        if not op.filter and stop is not None:
            query = query.limit(stop)
        with self.store.engine.connect() as conn:
            rows = list(conn.execute(query).all())
        if op.filter:
            rows = [r for r in rows if all(matches_filter(r.value.get(k), v)
                                           for k, v in op.filter.items())]
        return rows if stop is None else rows[:stop]

    def _semantic(self, op: SearchOp, now: datetime) -> list[tuple[Any, float | None]]:
        """Best items by their best-matching field, searched namespace by namespace."""
        assert op.query
        wanted = op.offset + op.limit
        with self.store.engine.connect() as conn:
            spaces = [r[0] for r in conn.execute(
                select(items.c.namespace).where(self._prefix_clause(op.namespace_prefix),
                                                items.c.indexed).distinct())]
        k = min(_MAX_K, max(10, 2 * wanted))
        while True:
            scores: dict[tuple[str, str], float] = {}
            exhausted = True
            for space in spaces:
                hits = self.store.search(op.query, user_id=namespace_scope(space), k=k,
                                         **_COSINE)
                exhausted = exhausted and len(hits) < k
                for memory, score in hits:
                    ident = (space, memory.metadata.get("key", ""))
                    scores[ident] = max(score, scores.get(ident, -2.0))
            rows = self._rows_for(list(scores), now)
            if op.filter:
                rows = [r for r in rows if all(matches_filter(r.value.get(f), v)
                                               for f, v in op.filter.items())]
            if len(rows) >= wanted or exhausted or k >= _MAX_K:
                break
            k = min(_MAX_K, k * 4)
        ranked = sorted(((r, scores[(r.namespace, r.key)]) for r in rows),
                        key=lambda pair: -pair[1])[op.offset:wanted]
        found: list[tuple[Any, float | None]] = list(ranked)
        if len(found) < op.limit:  # like the reference: fill with items that have no vectors
            unscored = self._scan(op, now, op.limit - len(found), ~items.c.indexed)
            found.extend((row, None) for row in unscored)
        return found

    def _rows_for(self, idents: list[tuple[str, str]], now: datetime) -> list[Any]:
        if not idents:
            return []
        by_space: dict[str, list[str]] = {}
        for space, key in idents:
            by_space.setdefault(space, []).append(key)
        rows: list[Any] = []
        with self.store.engine.connect() as conn:
            for space, keys in by_space.items():
                rows.extend(conn.execute(select(items).where(
                    items.c.namespace == space, items.c.key.in_(keys), self._live(now))))
        return rows

    def _list_namespaces(self, op: ListNamespacesOp, now: datetime) -> list[tuple[str, ...]]:
        with self.store.engine.connect() as conn:
            spaces = [decode_namespace(r[0]) for r in conn.execute(
                select(items.c.namespace).where(self._live(now)).distinct())]
        for cond in op.match_conditions or ():
            spaces = [s for s in spaces if match_namespace(s, cond.path, cond.match_type)]
        if op.max_depth is not None:
            spaces = [s[:op.max_depth] for s in spaces]
        return sorted(set(spaces))[op.offset:op.offset + op.limit]

    # ------------------------------------------------------------------ writes
    def _texts(self, op: PutOp) -> list[tuple[str, str]]:
        """(path, text) pairs to index for a put, per the store's or the call's fields."""
        if op.value is None or op.index is False or not self.index_config:
            return []
        fields = self._fields if op.index is None else list(op.index)
        pairs: list[tuple[str, str]] = []
        for path in fields:
            texts = get_text_at_path(op.value, path)
            for i, text in enumerate(texts):
                if text.strip():
                    pairs.append((path if len(texts) == 1 else f"{path}.{i}", text))
        return pairs

    def _put(self, puts: dict[tuple[str, str], PutOp], now: datetime) -> None:
        # 1. the index first: a value whose text the store rejects is not written at all.
        by_scope: dict[str, list[Operation]] = {}
        indexed: dict[tuple[str, str], bool] = {}
        for (space, key), op in puts.items():
            scope = namespace_scope(space)
            wanted = {text: path for path, text in self._texts(op)}
            indexed[(space, key)] = bool(wanted)
            ops = by_scope.setdefault(scope, [])
            for memory in self.store.list(scope, agent_id=key_tag(key)):
                if wanted.pop(memory.content, None) is None:
                    ops.append(DeleteOp(memory_id=memory.id, reason="langgraph item changed"))
            ops.extend(AddOp(content=text, agent_id=key_tag(key), category="langgraph",
                             metadata={"key": key, "path": path})
                       for text, path in wanted.items())
        hashed = [{"scope": str(namespace_scope(space)), "namespace": space}
                  for space in {space for space, _ in puts}]
        hashed = [h for h in hashed if h["scope"].startswith(_HASHED) and by_scope[h["scope"]]]
        if hashed:  # before the text: purge must find every scope that may hold some
            run_write(self.store.engine, lambda conn: conn.execute(_RECORD_SCOPE, hashed))
        for target, ops in by_scope.items():
            if ops:
                self.store.apply(ops, user_id=NamespaceScope(target))
        # 2. then the values, in one transaction.
        run_write(self.store.engine, lambda conn: _write_items(conn, puts, indexed, now))

    # ------------------------------------------------------------------ TTL
    def sweep_ttl(self) -> int:
        """Delete expired items (and their index entries); returns how many."""
        now = self._clock()
        with self.store.engine.connect() as conn:
            expired = conn.execute(select(items.c.namespace, items.c.key).where(
                items.c.expires_at <= now)).all()
        if expired:
            self._put({(ns, key): PutOp(decode_namespace(ns), key, None)
                       for ns, key in expired}, now)
        return len(expired)

    async def asweep_ttl(self) -> int:
        return await asyncio.to_thread(self.sweep_ttl)

    # ------------------------------------------------------------------ erasure
    def purge(self, namespace_prefix: tuple[str, ...]) -> int:
        """Erase every item under a namespace prefix with nothing left behind: values,
        indexed text, its history and vectors (``MemoryStore.forget_user`` per namespace).
        ``delete`` keeps the deleted text in the index history, like a memory's delete.
        Returns the number of items erased.
        """
        _validate(SearchOp(namespace_prefix))
        if not namespace_prefix:
            raise InvalidNamespaceError("purge needs a namespace prefix")
        where = self._prefix_clause(namespace_prefix)
        with self.store.engine.connect() as conn:
            spaces = [r[0] for r in conn.execute(select(items.c.namespace).where(where)
                                                 .distinct())]
        count = run_write(self.store.engine,
                          lambda conn: conn.execute(delete(items).where(where)).rowcount)
        # Scopes whose items are all deleted still hold history: find them by name, or
        # (hashed scopes of long namespaces) through the namespaces recorded for them.
        prefix = encode_namespace(namespace_prefix)
        readable = namespace_scope(prefix)
        under = or_(scopes.c.namespace == prefix,
                    scopes.c.namespace.startswith(prefix + ".", autoescape=True))
        with self.store.engine.connect() as conn:
            named = [r[0] for r in conn.execute(select(history.c.user_id).where(or_(
                history.c.user_id == readable,
                history.c.user_id.startswith(readable + ".", autoescape=True))).distinct())]
            named += [r[0] for r in conn.execute(select(scopes.c.scope).where(under))]
        for scope in sorted({namespace_scope(space) for space in spaces} | set(named)):
            self.store.forget_user(NamespaceScope(scope))
        run_write(self.store.engine, lambda conn: conn.execute(delete(scopes).where(under)))
        return int(count)

    async def apurge(self, namespace_prefix: tuple[str, ...]) -> int:
        return await asyncio.to_thread(self.purge, namespace_prefix)


def _write_items(conn: Connection, puts: dict[tuple[str, str], PutOp],
                 indexed: dict[tuple[str, str], bool], now: datetime) -> None:
    for (space, key), op in puts.items():
        where = (items.c.namespace == space, items.c.key == key)
        if op.value is None:
            conn.execute(delete(items).where(*where))
            continue
        ttl = op.ttl
        values = {"value": dict(op.value), "indexed": indexed[(space, key)], "updated_at": now,
                  "ttl_minutes": ttl,
                  "expires_at": None if ttl is None else now + timedelta(minutes=ttl)}
        changed = conn.execute(update(items).where(*where).values(**values)).rowcount
        if not changed:
            conn.execute(insert(items).values(namespace=space, key=key, created_at=now,
                                              **values))


def _item(row: Any, score: float | None = None) -> SearchItem:
    namespace = decode_namespace(row.namespace)
    return SearchItem(namespace=namespace, key=row.key, value=row.value,
                      created_at=row.created_at, updated_at=row.updated_at, score=score)


def _validate(op: Op) -> None:
    """Shape checks the base class skips when ops go straight to ``batch``."""
    if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
        raise InvalidInputError(f"unknown store operation {type(op).__name__}", field="ops")
    namespace = op.namespace_prefix if isinstance(op, SearchOp) else getattr(op, "namespace", ())
    if not isinstance(namespace, tuple) or not all(isinstance(x, str) for x in namespace):
        raise InvalidNamespaceError(
            f"namespace must be a tuple of strings, got {namespace!r}")
    validate_op_namespace(op)
    if isinstance(op, (GetOp, PutOp)):
        if not namespace:
            raise InvalidNamespaceError("namespace cannot be empty")
        if not isinstance(op.key, str):
            raise InvalidInputError(f"key must be a string, not {type(op.key).__name__}",
                                    field="key")
    if isinstance(op, PutOp) and op.value is not None:
        if not isinstance(op.value, Mapping):
            raise InvalidInputError(f"value must be a dict, not {type(op.value).__name__}",
                                    field="value")
        try:
            text = json.dumps(dict(op.value), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"value is not JSON-serialisable: {exc}",
                                    field="value") from None
        if "\\u0000" in text:  # PostgreSQL's JSONB cannot hold NUL
            raise InvalidInputError("value must not contain NUL characters", field="value")
        if op.ttl is not None and (not isinstance(op.ttl, (int, float)) or op.ttl <= 0):
            raise InvalidInputError("ttl must be a positive number of minutes", field="ttl")
    if isinstance(op, ListNamespacesOp) and (op.limit < 0 or op.offset < 0):
        raise InvalidInputError("limit and offset must not be negative", field="limit")


def _require_local_store(store: object) -> None:
    """Refuse anything but an in-process ``MemoryStore`` with a reason, not an AttributeError.

    Why a client cannot back this store: item values live in SQL tables beside the memories
    (read, filtered and written in transactions here), and each namespace's text is a scope of
    its own kind that the memory service deliberately never exposes: its API takes user ids
    only and refuses ``langgraph:`` ones, so a namespace can never be read as a user. Serving
    it would take a second API (items, TTL, namespace search and purge) on the service.
    """
    if isinstance(store, MemoryStore):
        return
    what = ("a MemoryBackend that is not a MemoryStore, such as a MemoryClient: the memory "
            "service's API is scoped to users and never exposes LangGraph namespaces or "
            "the items' table" if isinstance(store, MemoryBackend)
            else f"got {type(store).__name__}")
    raise InvalidInputError(
        f"PersistentStore needs an in-process MemoryStore ({what}). Give it a MemoryStore "
        "of its own (on PostgreSQL when several processes share it) and keep the client "
        "for users' memories", field="store")


def _check_index(store: MemoryStore,
                 index: IndexConfig | Literal[False] | None) -> IndexConfig | None:
    if index is False:
        return None
    config: dict[str, Any] = dict(index or {})
    embed = config.get("embed")
    if embed is not None and embed is not store.embeddings:
        raise InvalidInputError(
            "PersistentStore embeds with its MemoryStore's model; create the MemoryStore "
            "with embeddings=... instead of passing index['embed']", field="index")
    dims = config.get("dims")
    if dims is not None and store.dim is not None and dims != store.dim:
        raise InvalidInputError(f"index dims {dims} != the store's {store.dim}", field="index")
    fields = config.get("fields") or ["$"]
    if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
        raise InvalidInputError("index['fields'] must be a list of strings", field="index")
    config["fields"] = list(fields)
    config.setdefault("dims", store.dim)
    checked: IndexConfig = IndexConfig(**config)  # type: ignore[typeddict-item]
    return checked
