"""Export and import memories as JSON Lines: a complete, lossless backup.

One JSON object per line, UTF-8. The first line is a header, then every memory (embedding
included), then every history event, each tagged by ``"type"``::

    {"type": "header", "format": "langchain-persistent-memory", "version": 1,
     "embedding_model": "...", "embedding_dim": 384, "user_id": null,
     "memories": 2, "events": 3, "exported_at": "2026-01-01T00:00:00+00:00"}
    {"type": "memory", "id": "...", "user_id": "alice", "content": "...", ...,
     "content_hash": "...", "embedding": "<base64 of little-endian float32>",
     "entities": [{"name": "Melanie", "kind": "person", "subject": true,
                   "aliases": ["Mel"]}]}
    {"type": "event", "memory_id": "...", "user_id": "alice", "event": "ADD", ...}

Why this shape: vectors travel with the text so a restore never calls the embedding model;
history travels too (including events of deleted memories) so an export is a full backup; the
header names the model, so vectors are never mixed with another model's, and carries counts,
so a truncated file is refused instead of half-restored. Each memory carries its entity links
(the extractor's and a chat model's names, subject or mention, aliases), restored as they
were; links live under the memory's own user, so a file cannot link one user's memory to
another's entity. A file without ``entities`` (older exports) gets them from the text.

Import validates the whole file before writing anything, then commits one transaction per
chunk, each appending to the change log so every process's index sees the new rows.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from ..entities import Entity
from ..errors import EmbeddingMismatchError, InvalidInputError
from ..validation import check_embeddings, check_user_id
from .embedding import normalize_rows
from .engine import is_sqlite, run_write
from .entity_rows import link_memories, links_of, restore_links
from .files import atomic_write
from .origins import PROVENANCE_FIELDS
from .rows import encode_vector
from .schema import history, memories, provenance, read_meta, write_meta
from .transfer_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Header,
    MemoryRecord,
    bad_line,
    dumps,
    event_line,
    iso,
    memory_line,
    records,
)
from .write_types import Change, Committed
from .writer import Writer
from .writes import bump_version

__all__ = ["Conflict", "Source", "export_jsonl", "import_jsonl"]

_CHUNK = 1000
_DB_BATCH = 500

Source = str | os.PathLike[str] | IO[str]
Conflict = Literal["error", "skip"]


def _write_snapshot(engine: Engine, now: datetime, out: IO[str], user_id: str | None) -> int:
    """Write header, memories and events from one consistent read snapshot."""
    mem_where = [] if user_id is None else [memories.c.user_id == user_id]
    hist_where = [] if user_id is None else [history.c.user_id == user_id]
    with engine.connect() as conn:
        if not is_sqlite(engine):  # READ COMMITTED would let counts and rows disagree
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            meta = read_meta(conn)
            n_mem = conn.execute(select(func.count()).select_from(memories)
                                 .where(*mem_where)).scalar_one()
            n_evt = conn.execute(select(func.count()).select_from(history)
                                 .where(*hist_where)).scalar_one()
            out.write(dumps({
                "type": "header", "format": FORMAT_NAME, "version": FORMAT_VERSION,
                "embedding_model": meta.get("embedding_model"),
                "embedding_dim": int(meta["embedding_dim"]) if "embedding_dim" in meta
                else None,
                "user_id": user_id, "memories": int(n_mem), "events": int(n_evt),
                "exported_at": iso(now),
            }))
            streaming = conn.execution_options(stream_results=True, yield_per=_CHUNK)
            batch: list[Any] = []
            for row in streaming.execute(select(memories).where(*mem_where)
                                         .order_by(memories.c.pk)):
                batch.append(row)
                if len(batch) == _CHUNK:
                    _write_memories(conn, batch, out)
                    batch = []
            _write_memories(conn, batch, out)
            events = (select(history, *(provenance.c[name].label("p_" + name)
                                        for name in PROVENANCE_FIELDS))
                      .outerjoin(provenance, provenance.c.event_id == history.c.id)
                      .where(*hist_where).order_by(history.c.id))
            for row in streaming.execute(events):
                out.write(dumps(event_line(row)))
    return int(n_mem)


def _write_memories(conn: Connection, rows: list[Any], out: IO[str]) -> None:
    """Memory lines with their entity links (one query per user of the batch)."""
    links: dict[int, list[Entity]] = {}
    for user_id in sorted({row.user_id for row in rows}):
        links.update(links_of(conn, user_id, [r.pk for r in rows if r.user_id == user_id]))
    for row in rows:
        out.write(dumps(memory_line(row, links.get(row.pk, []))))


def export_jsonl(engine: Engine, clock: Callable[[], datetime],
                 dest: str | os.PathLike[str] | IO[str], *, user_id: str | None = None) -> int:
    """Write one user's (or everyone's) memories and history; return memories written.

    A path is written atomically (temporary file, then rename), so a failed export never
    leaves a half-written backup under the final name.
    """
    if user_id is not None:
        user_id = check_user_id(user_id)
    if not isinstance(dest, (str, os.PathLike)):
        return _write_snapshot(engine, clock(), dest, user_id)
    with atomic_write(Path(dest), "w", encoding="utf-8", newline="\n") as fh:
        return _write_snapshot(engine, clock(), fh, user_id)


def _line_source(src: Source) -> Callable[[], Iterator[str]]:
    """A factory of fresh line iterators: import reads the file twice (check, then write)."""
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise InvalidInputError(f"no such file: {path}", field="src")

        def from_path() -> Iterator[str]:
            with path.open(encoding="utf-8") as fh:
                yield from fh
        return from_path
    if not hasattr(src, "read"):
        raise InvalidInputError("src must be a path or a text file", field="src")
    if not (hasattr(src, "seekable") and src.seekable()):
        src = io.StringIO(src.read())  # a pipe can only be read once: keep it in memory
    start = src.tell()

    def from_file() -> Iterator[str]:
        src.seek(start)
        yield from src
    return from_file


# ---------------------------------------------------------------------------------- import
def _existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), _DB_BATCH):
        chunk = ids[start:start + _DB_BATCH]
        found.update(conn.execute(select(memories.c.id).where(memories.c.id.in_(chunk)))
                     .scalars())
        found.update(conn.execute(select(history.c.memory_id).distinct()
                                  .where(history.c.memory_id.in_(chunk))).scalars())
    return found


def _validate(store: Writer, lines: Iterator[str], user_id: str | None,
              on_conflict: Conflict) -> set[str]:
    """Read the whole file once, checking every line, before anything is written.

    Returns the ids to skip (already in the store, with ``on_conflict="skip"``).
    """
    header: Header | None = None
    owner: dict[str, str] = {}  # memory id -> user, for memory lines (all users)
    event_ids: dict[str, str] = {}
    links: list[tuple[int, str, str, str]] = []  # line, memory, its user, superseded_by
    counts = {"memory": 0, "event": 0}
    dim: int | None = None
    for lineno, kind, record in records(lines, store.max_chars):
        if kind == "header":
            header = record
            continue
        counts[kind] += 1
        if kind == "memory":
            mid, uid = record.values["id"], record.values["user_id"]
            if mid in owner:
                raise bad_line(lineno, f"memory id {mid!r} appears twice in the file", "id")
            if event_ids.get(mid, uid) != uid:
                raise bad_line(lineno, f"memory {mid!r} and its events name different users",
                           "user_id")
            owner[mid] = uid
            if record.values.get("superseded_by"):
                links.append((lineno, mid, uid, record.values["superseded_by"]))
            if record.vector is not None:
                assert header is not None  # records yields the header first
                dim = _check_vector_source(store, header, record.vector, dim, lineno)
        else:
            mid, uid = record["memory_id"], record["user_id"]
            if (owner.get(mid) or event_ids.setdefault(mid, uid)) != uid:
                raise bad_line(lineno, f"event for memory {mid!r} names another user", "user_id")
    assert header is not None  # records guarantees the header
    for kind, expected in (("memory", header.memories), ("event", header.events)):
        if expected is not None and counts[kind] != expected:
            raise InvalidInputError(
                f"the header promises {expected} {kind} lines but the file has "
                f"{counts[kind]}: truncated or edited; nothing was imported", field="src")
    wanted = sorted({mid for mid, uid in [*owner.items(), *event_ids.items()]
                     if user_id is None or uid == user_id})
    with store.engine.connect() as conn:
        _check_links(conn, links, owner)
        taken = _existing_ids(conn, wanted)
    if taken and on_conflict == "error":
        raise _conflict(sorted(taken), owner)
    return taken


def _check_links(conn: Connection, links: list[tuple[int, str, str, str]],
                 owner: dict[str, str]) -> None:
    """A memory may only be superseded by a memory of its own user (in the file or the
    store): a link across users would show one user's fact in another's lineage."""
    known = dict(owner)
    outside = sorted({target for _, _, _, target in links if target not in owner})
    for start in range(0, len(outside), _DB_BATCH):
        chunk = outside[start:start + _DB_BATCH]
        known.update((row[0], row[1]) for row in conn.execute(
            select(memories.c.id, memories.c.user_id).where(memories.c.id.in_(chunk))))
    for lineno, mid, uid, target in links:
        if known.get(target, uid) != uid:
            raise bad_line(lineno, f"memory {mid!r} of user {uid!r} is superseded_by "
                           f"{target!r}, a memory of another user; nothing was imported",
                           "superseded_by")


def _conflict(taken: list[str], owner: dict[str, str]) -> InvalidInputError:
    """Counted as the export counted them: memories, then histories of deleted ones."""
    rows = [mid for mid in taken if mid in owner]
    deleted = len(taken) - len(rows)
    what = f"{len(rows)} of the file's memories" if rows else "none of the file's memories"
    if deleted:
        what += f" and the history of {deleted} deleted one(s)"
    return InvalidInputError(
        f"{what} already exist in this store (e.g. {', '.join((rows or taken)[:3])}); "
        "nothing was imported. Use on_conflict='skip' to import only the new ones",
        field="on_conflict")


def _check_vector_source(store: Writer, header: Header, vector: np.ndarray,
                         dim: int | None, lineno: int) -> int:
    """Vectors are only reused when they come from this store's model and dimension."""
    model = store.embedder.model_name
    if header.model != model:
        raise EmbeddingMismatchError(
            f"the file's vectors were made by {header.model!r}, this store uses "
            f"{model!r}: import into a store opened with that model, then "
            "migrate with reembed()", stored=model, given=header.model)
    expected = store.embedder.dim or dim or header.dim or vector.shape[0]
    if vector.shape[0] != expected:
        raise EmbeddingMismatchError(
            f"line {lineno}: embedding has {vector.shape[0]} dimensions, expected {expected}",
            stored=str(expected), given=str(vector.shape[0]))
    return int(expected)


def _unit(vector: np.ndarray) -> np.ndarray:
    """Keep exported (already unit) vectors bit-exact; normalise hand-made ones."""
    norm = float(np.linalg.norm(vector))
    return vector if abs(norm - 1.0) <= 1e-5 else normalize_rows(vector)[0]


def _fill_vectors(store: Writer, mems: list[MemoryRecord]) -> None:
    """Give every record a unit vector: its own, a stored one for the same text, or a new
    one from the store's model (each distinct text once)."""
    missing: dict[str, dict[str, str]] = {}  # user -> content hash -> text
    for m in mems:
        if m.vector is not None:
            m.vector = _unit(m.vector)
        else:
            missing.setdefault(m.values["user_id"], {}).setdefault(
                m.values["content_hash"], m.values["content"])
    if missing:
        known: dict[str, np.ndarray] = {}
        for user_id, texts in missing.items():
            known.update(store.embedder.known(user_id, texts))
        todo = list({h: text for texts in missing.values() for h, text in texts.items()
                     if h not in known}.items())
        if todo:
            raw = store.embedder.embeddings.embed_documents([text for _, text in todo])
            matrix = normalize_rows(check_embeddings(raw, len(todo)))
            known.update(zip([h for h, _ in todo], matrix))
        for m in mems:
            if m.vector is None:
                m.vector = known[m.values["content_hash"]]
    for m in mems:
        assert m.vector is not None
        store.embedder.check_dim(m.vector.shape[0])
        m.values["embedding"] = encode_vector(m.vector)


def _link_imported(conn: Connection, mems: list[MemoryRecord]) -> None:
    """Entities of imported memories: the file's links (each memory's, written for its own
    user), or for an older export without them, derived from the text like every add's."""
    given = {m.values["id"]: m.entities for m in mems}
    derived: dict[str, list[tuple[int, str]]] = {}
    restored: dict[str, dict[int, list[Entity]]] = {}
    for pk, memory_id, user_id, content in conn.execute(
            select(memories.c.pk, memories.c.id, memories.c.user_id, memories.c.content)
            .where(memories.c.id.in_(list(given))).order_by(memories.c.pk)):
        links = given[memory_id]
        if links is None:
            derived.setdefault(user_id, []).append((pk, content))
        else:
            restored.setdefault(user_id, {})[pk] = links
    for user_id, texts in derived.items():
        link_memories(conn, user_id, texts)
    for user_id, found in restored.items():
        restore_links(conn, user_id, found)


def _write_chunk(store: Writer, mems: list[MemoryRecord],
                 events: list[dict[str, Any]]) -> int:
    """One transaction: rows, their history and their users' versions; then partitions."""
    _fill_vectors(store, mems)

    def body(conn: Connection) -> Committed:
        if mems and "embedding_model" not in read_meta(conn):
            write_meta(conn, "embedding_model", store.embedder.model_name)
            write_meta(conn, "embedding_dim", str(store.embedder.dim))
        touched = sorted({m.values["user_id"] for m in mems}
                         | {e["user_id"] for e in events})
        versions = {u: bump_version(conn, u) for u in touched}
        if mems:
            conn.execute(insert(memories), [m.values for m in mems])
            _link_imported(conn, mems)
        if events:
            written = conn.execute(
                insert(history).returning(history.c.id, sort_by_parameter_order=True),
                [{k: v for k, v in e.items() if k != "provenance"} for e in events]).scalars()
            origins = [{"event_id": event_id, "memory_id": e["memory_id"],
                        "user_id": e["user_id"], **e["provenance"]}
                       for event_id, e in zip(written.all(), events) if e["provenance"]]
            if origins:
                conn.execute(insert(provenance), origins)
        return Committed(versions, [Change(u, 0, "other") for u in touched])

    try:
        committed = run_write(store.engine, body)
    except IntegrityError:  # another writer took one of the ids after the check
        raise InvalidInputError(
            "a memory id in this chunk was created by another writer during the import; "
            "earlier chunks are in. Run the import again with on_conflict='skip'",
            field="id") from None
    store.update_partitions(committed)  # imported users reload on their next search
    return len(mems)


def import_jsonl(store: Writer, src: Source, *, user_id: str | None = None,
                 on_conflict: Conflict = "error") -> int:
    """Restore an export; return the number of memories imported.

    Args:
        store: the destination's writer.
        src: a path or a text file (read twice: a pipe is buffered in memory).
        user_id: import only this user's memories and history.
        on_conflict: what to do with a memory id that already exists (as a row or in the
            history): ``"error"`` refuses the whole file, ``"skip"`` imports only the new
            ones, which also resumes an import that stopped half-way.

    Raises:
        InvalidInputError: a bad line (the message names it), a truncated file or an id
            conflict; nothing was written.
        EmbeddingMismatchError: the file's vectors come from another model or dimension.
    """
    if user_id is not None:
        user_id = check_user_id(user_id)
    if on_conflict not in ("error", "skip"):
        raise InvalidInputError("on_conflict must be 'error' or 'skip'", field="on_conflict")
    lines = _line_source(src)
    skip = _validate(store, lines(), user_id, on_conflict)
    imported = 0
    mems: list[MemoryRecord] = []
    events: list[dict[str, Any]] = []
    for _, kind, record in records(lines(), store.max_chars):
        if kind == "header":
            continue
        values = record.values if kind == "memory" else record
        memory_id = values["id"] if kind == "memory" else values["memory_id"]
        if (user_id is not None and values["user_id"] != user_id) or memory_id in skip:
            continue
        (mems if kind == "memory" else events).append(record)
        if len(mems) + len(events) >= _CHUNK:
            imported += _write_chunk(store, mems, events)
            mems, events = [], []
    if mems or events:
        imported += _write_chunk(store, mems, events)
    return imported
