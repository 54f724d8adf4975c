"""Export / import as JSON Lines: a lossless, complete backup that never calls the model.

Why: a backup is only worth something if restoring it gives back exactly what was there (ids,
timestamps, supersessions, history, vectors), works across backends, and refuses a damaged
file without half-restoring it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from langchain_persistent_memory import (
    ANY_USER,
    AddOp,
    EmbeddingMismatchError,
    InvalidInputError,
    MemoryNotFoundError,
    MemoryStore,
)
from langchain_persistent_memory.store import transfer
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.snapshots import db_fingerprint

T0 = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)


class Clock:
    """A controllable "now", so timestamps differ per write and can be compared exactly."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1, microseconds=7)
        return self.now


def populate(store: MemoryStore) -> dict[str, str]:
    """Every kind of row and event: fields set, updated, superseded, deleted, two users."""
    a = store.add("Prefers short technical explanations", user_id="alice", agent_id="tutor",
                  session_id="s1", category="preference", importance=0.73,
                  metadata={"source": "chat", "tags": ["x", "ü"], "n": 3, "ok": True,
                            "nested": {"f": 0.1}},
                  valid_from=datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc))
    b = store.add("Lives in Lisbon", user_id="alice", category="fact")
    store.update(a.id, content="Prefers very short technical explanations", importance=0.9,
            user_id="alice")
    new_b = store.supersede(b.id, "Lives in Porto", metadata={"moved": "2024"}, user_id="alice")
    gone = store.add("Has a cat named Tom", user_id="alice")
    store.delete(gone.id, reason="user asked", user_id="alice")
    store.add_many(["Bob likes jazz", {"content": "Bob plays chess", "category": "hobby"}],
                   user_id="bob")
    return {"a": a.id, "b": b.id, "new_b": new_b.id, "gone": gone.id}


def export_text(store: MemoryStore, **kwargs: str) -> str:
    buffer = io.StringIO()
    store.export_jsonl(buffer, **kwargs)
    return buffer.getvalue()


def without_exported_at(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines()]
    lines[0].pop("exported_at")
    return lines


@pytest.fixture
def clocked(store_url: str, tmp_path: Path) -> Iterator[MemoryStore]:
    s = MemoryStore(store_url, embeddings=HashEmbeddings(), index_path=tmp_path / "src.lpm",
                    clock=Clock())
    yield s
    s.close()


def other_backend_url(store_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if store_url.startswith("sqlite"):
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'restored.db'}"


def test_round_trip_across_backends_is_lossless_and_embeds_nothing(
        clocked: MemoryStore, store_url: str, request: pytest.FixtureRequest,
        tmp_path: Path) -> None:
    ids = populate(clocked)
    path = tmp_path / "backup.jsonl"
    assert clocked.export_jsonl(path) == 5  # alice: 2 current, 1 superseded; bob: 2
    embeddings = HashEmbeddings()
    with MemoryStore(other_backend_url(store_url, request, tmp_path), embeddings=embeddings,
                     index_path=tmp_path / "dst.lpm") as restored:
        assert restored.import_jsonl(path) == 5
        assert embeddings.calls == []  # vectors came from the file
        for user in ("alice", "bob"):
            before = clocked.list(user, include_superseded=True)
            after = restored.list(user, include_superseded=True)
            assert [m.model_dump() for m in after] == [m.model_dump() for m in before]
            for m in before:
                assert (restored.get(m.id, user_id=user, with_embedding=True).embedding
                        == clocked.get(m.id, user_id=user, with_embedding=True).embedding)
        for memory_id in ids.values():  # history of every memory, deleted ones included
            assert ([e.model_dump(exclude={"id"})
                     for e in restored.history(memory_id, user_id=ANY_USER)]
                    == [e.model_dump(exclude={"id"})
                        for e in clocked.history(memory_id, user_id=ANY_USER)])
        with pytest.raises(MemoryNotFoundError):
            restored.get(ids["gone"], user_id="alice")
        old = restored.get(ids["b"], user_id="alice")
        assert old.valid_to is not None and old.superseded_by == ids["new_b"]
        # Re-exporting the restored store gives the same file, line for line.
        assert without_exported_at(export_text(restored)) == without_exported_at(
            path.read_text(encoding="utf-8"))
        assert index_mismatches(restored) == []
        query = "short technical explanations"
        assert ([(h.memory.id, round(h.score, 6)) for h in restored.search(
            query, user_id="alice", k=3, mode="dense")]
                == [(h.memory.id, round(h.score, 6)) for h in clocked.search(
                    query, user_id="alice", k=3, mode="dense")])


def test_file_layout_header_memories_then_events(clocked: MemoryStore) -> None:
    populate(clocked)
    lines = [json.loads(line) for line in export_text(clocked).splitlines()]
    header = lines[0]
    assert header["type"] == "header"
    assert header["format"] == "langchain-persistent-memory" and header["version"] == 1
    assert header["embedding_model"] == clocked.model_name
    assert header["embedding_dim"] == 64
    kinds = [line["type"] for line in lines[1:]]
    assert kinds == ["memory"] * header["memories"] + ["event"] * header["events"]
    assert header["events"] == 9  # 2 ADD, UPDATE, SUPERSEDE + ADD, ADD + DELETE, 2 ADD


def test_export_one_user_and_import_one_user(clocked: MemoryStore, tmp_path: Path) -> None:
    populate(clocked)
    text = export_text(clocked, user_id="bob")
    users = {json.loads(line).get("user_id") for line in text.splitlines()[1:]}
    assert users == {"bob"}
    full = tmp_path / "all.jsonl"
    clocked.export_jsonl(full)
    clocked.forget_user("alice")
    assert clocked.import_jsonl(full, user_id="alice") == 3  # only alice's lines
    assert clocked.count("alice", include_superseded=True) == 3
    assert clocked.count("bob") == 2  # untouched, not duplicated


def test_restore_into_the_same_database_is_seen_by_another_process_index(
        clocked: MemoryStore, store_url: str, tmp_path: Path) -> None:
    populate(clocked)
    backup = tmp_path / "b.jsonl"
    clocked.export_jsonl(backup)
    clocked.forget_user("alice")
    other = MemoryStore(store_url, embeddings=HashEmbeddings(), index_path=tmp_path / "o.lpm")
    try:
        assert other.search("Porto", user_id="alice", mode="dense") == []
        clocked.import_jsonl(backup, user_id="alice")
        hits = other.search("Lives in Porto", user_id="alice", k=1, mode="dense")
        assert hits[0].memory.content == "Lives in Porto"  # replayed from the change log
        assert index_mismatches(other) == [] and index_mismatches(clocked) == []
    finally:
        other.close()


def test_duplicate_ids_error_by_default_and_skip_resumes(clocked: MemoryStore,
                                                         tmp_path: Path) -> None:
    populate(clocked)
    backup = tmp_path / "b.jsonl"
    clocked.export_jsonl(backup)
    before = db_fingerprint(clocked)
    with pytest.raises(InvalidInputError, match="already exist"):
        clocked.import_jsonl(backup)
    assert db_fingerprint(clocked) == before
    assert clocked.import_jsonl(backup, on_conflict="skip") == 0
    assert db_fingerprint(clocked) == before
    clocked.forget_user("bob")
    assert clocked.import_jsonl(backup, on_conflict="skip") == 2  # only bob's come back
    assert sorted(m.content for m in clocked.list("bob")) == ["Bob likes jazz",
                                                              "Bob plays chess"]
    assert len(clocked.history(clocked.list("bob")[0].id, user_id="bob")) == 1  # no doubled events


def test_chunked_import_validates_whole_file_first(clocked: MemoryStore, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clocked.add_many([f"memory number {i}" for i in range(12)], user_id="carol")
    good = export_text(clocked)
    clocked.forget_user("carol")
    monkeypatch.setattr(transfer, "_CHUNK", 3)  # many transactions for a small file
    before = db_fingerprint(clocked)
    lines = good.splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["event"] = "EXPLODE"
    bad = "".join([*lines[:-1], json.dumps(last) + "\n"])
    with pytest.raises(InvalidInputError, match=f"line {len(lines)}"):
        clocked.import_jsonl(io.StringIO(bad))
    assert db_fingerprint(clocked) == before
    assert clocked.import_jsonl(io.StringIO(good)) == 12
    assert clocked.count("carol") == 12
    assert index_mismatches(clocked) == []


def _edit(text: str, lineno: int, **changes: object) -> str:
    lines = text.splitlines()
    obj = json.loads(lines[lineno - 1])
    for key, value in changes.items():
        if value is _DROP:
            obj.pop(key)
        else:
            obj[key] = value
    lines[lineno - 1] = json.dumps(obj)
    return "\n".join(lines) + "\n"


_DROP = object()
BAD_FILES = {
    "not json": lambda t: t + "{not json\n",
    "not an object": lambda t: t + "[1, 2]\n",
    "no header": lambda t: "\n".join(t.splitlines()[1:]) + "\n",
    "empty": lambda t: "",
    "other format": lambda t: _edit(t, 1, format="something-else"),
    "future version": lambda t: _edit(t, 1, version=99),
    "truncated": lambda t: "\n".join(t.splitlines()[:-1]) + "\n",
    "unknown type": lambda t: t + '{"type": "mystery"}\n',
    "unknown field": lambda t: _edit(t, 2, colour="red"),
    "empty content": lambda t: _edit(t, 2, content="  ", content_hash=_DROP),
    "edited content": lambda t: _edit(t, 2, content="something else"),
    "importance": lambda t: _edit(t, 2, importance=1.5),
    "metadata": lambda t: _edit(t, 2, metadata=[1, 2]),
    "user": lambda t: _edit(t, 2, user_id=""),
    "timestamp": lambda t: _edit(t, 2, created_at="yesterday"),
    "missing timestamp": lambda t: _edit(t, 2, valid_from=_DROP),
    "long id": lambda t: _edit(t, 2, id="x" * 37),
    "embedding garbage": lambda t: _edit(t, 2, embedding="not base64!"),
    "embedding nan": lambda t: _edit(t, 2, embedding=[float("nan")] * 64),
    "duplicate id": lambda t: t + t.splitlines()[1] + "\n",
    "event type": lambda t: _edit(t, len(t.splitlines()), event="EXPLODE"),
}


@pytest.mark.parametrize("damage", sorted(BAD_FILES))
def test_bad_file_is_refused_and_changes_nothing(sqlite_store: MemoryStore,
                                                 damage: str) -> None:
    sqlite_store.add_many(["first memory", "second memory"], user_id="dan")
    good = export_text(sqlite_store)
    sqlite_store.forget_user("dan")
    sqlite_store.add("unrelated survivor", user_id="erin")
    before = db_fingerprint(sqlite_store)
    calls = len(sqlite_store.embeddings.calls)
    with pytest.raises(InvalidInputError):
        sqlite_store.import_jsonl(io.StringIO(BAD_FILES[damage](good)))
    assert db_fingerprint(sqlite_store) == before
    assert len(sqlite_store.embeddings.calls) == calls


def test_vectors_from_another_model_or_size_are_refused(sqlite_store: MemoryStore,
                                                        tmp_path: Path) -> None:
    with MemoryStore(f"sqlite:///{tmp_path / 'other.db'}",
                     embeddings=HashEmbeddings(model="another-model")) as other:
        other.add("made by another model", user_id="u")
        foreign = export_text(other)
    sqlite_store.add("already here", user_id="u")
    before = db_fingerprint(sqlite_store)
    with pytest.raises(EmbeddingMismatchError):
        sqlite_store.import_jsonl(io.StringIO(foreign))
    own = export_text(sqlite_store)
    short = _edit(own, 2, id="11111111-1111-1111-1111-111111111111", embedding=[0.5] * 32)
    with pytest.raises(EmbeddingMismatchError, match="32 dimensions"):
        sqlite_store.import_jsonl(io.StringIO(short))
    assert db_fingerprint(sqlite_store) == before


def test_lines_without_vectors_are_embedded_once_per_distinct_text(
        sqlite_store: MemoryStore) -> None:
    sqlite_store.add("text already stored", user_id="x")
    text = export_text(sqlite_store)
    header = json.loads(text.splitlines()[0])
    header.update(memories=4, events=0)
    template = json.loads(text.splitlines()[1])
    lines = [json.dumps(header)]
    for i, content in enumerate(["new words here", "new words here", "text already stored",
                                 "other new words"]):
        line = dict(template, id=f"00000000-0000-0000-0000-00000000000{i}", user_id="y",
                    content=content)
        line.pop("embedding")
        line.pop("content_hash")
        lines.append(json.dumps(line))
    sqlite_store.embeddings.calls.clear()
    assert sqlite_store.import_jsonl(io.StringIO("\n".join(lines))) == 4
    assert sqlite_store.embeddings.calls == [["new words here", "other new words"]]
    hits = sqlite_store.search("other new words", user_id="y", k=1, mode="dense")
    assert hits[0].memory.content == "other new words"


def test_plain_number_lists_and_unnormalised_vectors_are_accepted(
        sqlite_store: MemoryStore) -> None:
    sqlite_store.add("seed", user_id="x")
    text = export_text(sqlite_store)
    sqlite_store.forget_user("x")
    edited = _edit(text, 2, embedding=[3.0] + [0.0] * 63)
    assert sqlite_store.import_jsonl(io.StringIO(edited)) == 1
    stored = sqlite_store.list("x")[0]
    assert sqlite_store.get(stored.id, with_embedding=True,
            user_id=ANY_USER).embedding == [1.0] + [0.0] * 63


def test_pipe_source_and_empty_store(sqlite_store: MemoryStore, tmp_path: Path) -> None:
    text = export_text(sqlite_store)
    header = json.loads(text)
    assert (header["memories"], header["events"], header["embedding_model"]) == (0, 0, None)
    assert sqlite_store.import_jsonl(io.StringIO(text)) == 0
    sqlite_store.add("through a pipe", user_id="p")
    data = export_text(sqlite_store)
    sqlite_store.forget_user("p")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data.encode())
    os.close(write_fd)
    with os.fdopen(read_fd, encoding="utf-8") as pipe:
        assert not pipe.seekable()
        assert sqlite_store.import_jsonl(pipe) == 1
    assert sqlite_store.list("p")[0].content == "through a pipe"


def test_export_to_a_path_leaves_no_temporary_files(sqlite_store: MemoryStore,
                                                    tmp_path: Path) -> None:
    sqlite_store.add("x", user_id="u")
    out = tmp_path / "backups" / "b.jsonl"
    assert sqlite_store.export_jsonl(out) == 1
    assert [p.name for p in out.parent.iterdir()] == ["b.jsonl"]
    with pytest.raises(InvalidInputError, match="no such file"):
        sqlite_store.import_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(InvalidInputError, match="on_conflict"):
        sqlite_store.import_jsonl(out, on_conflict="overwrite")  # type: ignore[arg-type]


async def test_async_twins(store: MemoryStore, tmp_path: Path) -> None:
    await store.aadd("async memory", user_id="z")
    path = tmp_path / "a.jsonl"
    assert await store.aexport_jsonl(path, user_id="z") == 1
    await store.aforget_user("z")
    assert await store.aimport_jsonl(path) == 1
    assert (await store.alist("z"))[0].content == "async memory"


def test_id_taken_by_another_writer_during_import_is_a_typed_error(tmp_path: Path) -> None:
    """The race between the check pass and the write: the chunk fails cleanly."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    taken = "22222222-2222-2222-2222-222222222222"

    class RacingEmbeddings(HashEmbeddings):
        """Called between validation and the write: another writer grabs an id then."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            with MemoryStore(url, embeddings=HashEmbeddings(), index_path=tmp_path / "w.lpm"
                             ) as writer:
                writer.apply([AddOp(content="I got here first", id=taken)], user_id="w")
            return super().embed_documents(texts)

    with MemoryStore(url, embeddings=RacingEmbeddings(), index_path=tmp_path / "r.lpm") as s:
        header = {"type": "header", "format": "langchain-persistent-memory", "version": 1,
                  "embedding_model": s.model_name, "embedding_dim": None, "user_id": None,
                  "memories": 1, "events": 0}
        line = {"type": "memory", "id": taken, "user_id": "u", "content": "needs a vector",
                "created_at": T0.isoformat(), "updated_at": T0.isoformat(),
                "valid_from": T0.isoformat()}
        text = json.dumps(header) + "\n" + json.dumps(line) + "\n"
        with pytest.raises(InvalidInputError, match="on_conflict='skip'"):
            s.import_jsonl(io.StringIO(text))
        assert s.get(taken, user_id=ANY_USER).content == "I got here first"
        assert s.import_jsonl(io.StringIO(text), on_conflict="skip") == 0


@pytest.mark.parametrize("target", ["in the file", "in the store"])
def test_import_refuses_a_supersession_link_to_another_users_memory(
        store: MemoryStore, target: str) -> None:
    """Before: a file whose alice memory is superseded_by bob's memory was imported, so
    alice's lineage led to bob's text."""
    bobs = store.add("bob's new address is 9 Elm Street", user_id="bob")
    old = store.add("alice lives in Porto", user_id="alice")
    store.supersede(old.id, "alice lives in Lisbon", user_id="alice")
    scope = {"user_id": "alice"} if target == "in the store" else {}
    lines = [json.loads(line) for line in export_text(store, **scope).splitlines()]
    for line in lines:
        if line.get("id") == old.id:
            line["superseded_by"] = bobs.id
    store.forget_user("alice")
    if target == "in the file":
        store.forget_user("bob")
    before = db_fingerprint(store)
    forged = "".join(json.dumps(line) + "\n" for line in lines)
    with pytest.raises(InvalidInputError, match=r"superseded_by .* another user") as caught:
        store.import_jsonl(io.StringIO(forged))
    assert caught.value.field == "superseded_by"
    assert db_fingerprint(store) == before
    assert store.count("alice", include_superseded=True) == 0
