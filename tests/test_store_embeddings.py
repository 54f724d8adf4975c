"""The embedding model: recorded per store, never mixed, never called twice for one text.

Why: vectors of two models in one index make every search silently wrong, and embedding calls
cost money with API models, so a store must refuse the wrong model, migrate on request, and
reuse every vector it already has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from langchain_persistent_memory import EmbeddingMismatchError, InvalidInputError, MemoryStore
from langchain_persistent_memory.store.schema import memories, read_meta
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.openai_stub import embed_text
from tests.support.snapshots import db_fingerprint


def open_store(url: str, tmp_path: Path, embeddings: HashEmbeddings, **kwargs: object
               ) -> MemoryStore:
    return MemoryStore(url, embeddings=embeddings, index_path=tmp_path / "i.lpm", **kwargs)


@pytest.fixture
def old_store(store_url: str, tmp_path: Path) -> Iterator[str]:
    """A closed store of HashEmbeddings(64, "old") with repeated texts and a supersession."""
    with open_store(store_url, tmp_path, HashEmbeddings(64, "old")) as s:
        s.add_many(["likes green tea", "works as a nurse", "plays the violin"], user_id="a")
        s.add_many(["likes green tea", "drives a red car"], user_id="b")
        old = s.add("lives in Berlin", user_id="a")
        s.supersede(old.id, "lives in Madrid", user_id="a")
    yield store_url


def stored_vectors(store: MemoryStore) -> dict[str, np.ndarray]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(memories.c.id, memories.c.embedding)).all()
    return {mid: np.frombuffer(blob, dtype="<f4") for mid, blob in rows}


def test_opening_with_another_model_is_refused(old_store: str, tmp_path: Path) -> None:
    with pytest.raises(EmbeddingMismatchError, match="old") as info:
        open_store(old_store, tmp_path, HashEmbeddings(32, "new"))
    assert info.value.stored == "HashEmbeddings:old"
    assert info.value.given == "HashEmbeddings:new"


def test_same_name_other_dimension_is_refused_on_use(old_store: str, tmp_path: Path) -> None:
    with open_store(old_store, tmp_path, HashEmbeddings(32, "old")) as s:
        before = db_fingerprint(s)
        with pytest.raises(EmbeddingMismatchError):
            s.add("a brand new text", user_id="a")
        with pytest.raises(EmbeddingMismatchError):
            s.search("green tea", user_id="a", mode="dense")
        assert db_fingerprint(s) == before


def test_reembed_migrates_every_vector_once_per_text(old_store: str, tmp_path: Path) -> None:
    new = HashEmbeddings(32, "new")
    seen: list[tuple[int, int]] = []
    with open_store(old_store, tmp_path, new, check_embedding_model=False) as s:
        assert s.reembed(batch_size=2, progress=lambda done, total: seen.append((done, total))
                         ) == 7  # every row, the superseded one too
        embedded = [t for call in new.calls for t in call]
        assert sorted(embedded) == sorted({"likes green tea", "works as a nurse",
                                           "plays the violin", "drives a red car",
                                           "lives in Berlin", "lives in Madrid"})
        assert seen == [(2, 6), (4, 6), (6, 6)]
        with s.engine.connect() as conn:
            meta = read_meta(conn)
        assert (meta["embedding_model"], meta["embedding_dim"]) == ("HashEmbeddings:new", "32")
        assert "reembed_model" not in meta
        for memory in s.list("a", include_superseded=True):
            expected = np.asarray(embed_text(memory.content, 32), dtype=np.float32)
            assert np.allclose(stored_vectors(s)[memory.id], expected, atol=1e-6)
        assert index_mismatches(s) == []
        assert s.search("red car", user_id="b", k=1)[0].memory.content == "drives a red car"
    with pytest.raises(EmbeddingMismatchError):
        open_store(old_store, tmp_path, HashEmbeddings(64, "old"))
    reopened_model = HashEmbeddings(32, "new")
    with open_store(old_store, tmp_path, reopened_model) as s:
        hits = s.search("violin", user_id="a", k=1, mode="dense")
        assert hits[0].memory.content == "plays the violin"
        assert reopened_model.calls == [["violin"]]  # only the query was embedded
        s.add("new memory after the migration", user_id="a")
        assert index_mismatches(s) == []


class FailingAfter(HashEmbeddings):
    """Raises once ``budget`` texts have been embedded: an interrupted migration."""

    def __init__(self, budget: int, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.budget = budget

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.texts_embedded + len(texts) > self.budget:
            raise RuntimeError("API quota exceeded")
        return super().embed_documents(texts)


def test_interrupted_reembed_leaves_old_store_usable_and_resumes(old_store: str,
                                                                 tmp_path: Path) -> None:
    with open_store(old_store, tmp_path, FailingAfter(4, 32, "new"),
                    check_embedding_model=False) as s:
        before = {k: v for k, v in db_fingerprint(s).items() if k != "meta"}
        with pytest.raises(RuntimeError, match="quota"):
            s.reembed(batch_size=2)
        after = {k: v for k, v in db_fingerprint(s).items() if k != "meta"}
        assert after == before  # rows untouched: no store of mixed vectors
    with open_store(old_store, tmp_path, HashEmbeddings(64, "old")) as s:  # still the old one
        assert s.search("nurse", user_id="a", k=1)[0].memory.content == "works as a nurse"
    resumed = FailingAfter(100, 32, "new")  # same class, so the same model name
    with open_store(old_store, tmp_path, resumed, check_embedding_model=False) as s:
        assert s.reembed(batch_size=2) == 7
        assert resumed.texts_embedded == 2  # 4 of the 6 texts were kept from the first run
        assert index_mismatches(s) == []


def test_reembed_empty_store_and_bad_batch_size(store_url: str, tmp_path: Path) -> None:
    with open_store(store_url, tmp_path, HashEmbeddings(64, "old")) as s:
        s.add("will be forgotten", user_id="a")
        s.forget_user("a")
    with open_store(store_url, tmp_path, HashEmbeddings(16, "new"),
                    check_embedding_model=False) as s:
        with pytest.raises(InvalidInputError):
            s.reembed(batch_size=0)
        assert s.reembed() == 0
        s.add("first vector of the new model", user_id="a")
    with open_store(store_url, tmp_path, HashEmbeddings(16, "new")) as s:
        assert s.search("new model", user_id="a")[0].memory.content.startswith("first")


async def test_areembed(old_store: str, tmp_path: Path) -> None:
    s = open_store(old_store, tmp_path, HashEmbeddings(64, "old"))
    try:
        new = HashEmbeddings(48, "new")
        assert await s.areembed(new) == 7  # the model can also be handed to reembed
        assert s.model_name == "HashEmbeddings:new" and s.dim == 48
        assert (await s.asearch("Madrid", user_id="a", k=1))[0].memory.content == (
            "lives in Madrid")
    finally:
        await s.aclose()


def test_identical_content_is_never_embedded_twice(store: MemoryStore) -> None:
    emb = store.embeddings
    assert isinstance(emb, HashEmbeddings)
    store.add_many(["same words", "same words", "other words"], user_id="a")
    assert emb.calls == [["same words", "other words"]]
    store.add("same words", user_id="b")  # another user: the stored vector is reused
    memory = store.add("fresh words", user_id="b")
    store.update(memory.id, content="other words", user_id="b")  # text known: no call
    old = store.add("temporary", user_id="c")
    store.supersede(old.id, "same words", user_id="c")
    assert emb.calls == [["same words", "other words"], ["fresh words"], ["temporary"]]
    vectors = stored_vectors(store)
    same = [vectors[m.id] for u in "abc" for m in store.list(u) if m.content == "same words"]
    assert len(same) == 3 and all(np.array_equal(same[0], v) for v in same)


def test_query_embeddings_are_cached(store: MemoryStore) -> None:
    store.add("coffee in the morning", user_id="a")
    emb = store.embeddings
    assert isinstance(emb, HashEmbeddings)
    before = len(emb.calls)
    for _ in range(3):
        store.search("morning coffee", user_id="a")
    assert len(emb.calls) == before + 1
