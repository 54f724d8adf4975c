"""MemoryRetriever: the langchain-tests standard suite plus user scoping and metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_persistent_memory import InvalidInputError, MemoryStore, ScopeConflictError
from langchain_persistent_memory.integrations.retriever import MemoryRetriever
from tests.support.embeddings import HashEmbeddings

FACTS = ["alice likes green tea", "alice lives in Lisbon", "alice plays the cello",
         "alice is allergic to peanuts"]


class TestMemoryRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Path) -> Iterator[None]:
        self.memory_store = MemoryStore(f"sqlite:///{tmp_path / 'm.db'}",
                                        embeddings=HashEmbeddings())
        self.memory_store.add_many(FACTS, user_id="alice")
        yield
        self.memory_store.close()

    @property
    def retriever_constructor(self) -> type[MemoryRetriever]:
        return MemoryRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"store": self.memory_store, "user_id": "alice", "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "what does alice like to drink?"


@pytest.fixture
def filled(store: MemoryStore) -> MemoryStore:
    store.add("alice likes green tea", user_id="alice", category="preference")
    store.add("alice lives in Lisbon", user_id="alice", category="fact")
    store.add("bob likes green tea too", user_id="bob", category="preference")
    return store


def test_documents_carry_id_score_category_and_timestamps(filled: MemoryStore) -> None:
    docs = MemoryRetriever(store=filled, user_id="alice", k=1).invoke("green tea")
    assert [d.page_content for d in docs] == ["alice likes green tea"]
    meta = docs[0].metadata
    stored = filled.get(meta["id"], user_id="alice")
    assert docs[0].id == stored.id and meta["user_id"] == "alice"
    assert meta["category"] == "preference"
    # the store's ranking score of that hit (relative to the search, not bounded by 1)
    assert meta["score"] > 0
    assert meta["score"] == pytest.approx(filled.search("green tea", user_id="alice", k=1)[0].score)
    assert meta["created_at"] == stored.created_at.isoformat()


def test_user_comes_from_call_then_config_then_constructor(filled: MemoryStore) -> None:
    retriever = MemoryRetriever(store=filled, user_id="alice", k=5)
    assert {d.metadata["user_id"] for d in retriever.invoke("green tea")} == {"alice"}
    assert {d.metadata["user_id"] for d in retriever.invoke("green tea", user_id="bob")} \
        == {"bob"}
    unbound = MemoryRetriever(store=filled, k=5)
    via_config = unbound.invoke("green tea", config={"metadata": {"user_id": "bob"}})
    assert [d.page_content for d in via_config] == ["bob likes green tea too"]
    via_configurable = unbound.invoke("green tea", config={"configurable": {"user_id": "bob"}})
    assert [d.page_content for d in via_configurable] == ["bob likes green tea too"]
    same = retriever.invoke("green tea", config={"metadata": {"user_id": "alice"}})
    assert {d.metadata["user_id"] for d in same} == {"alice"}


@pytest.mark.parametrize("section", ["metadata", "configurable"])
async def test_retriever_for_one_user_refuses_another_from_the_run_config(
        filled: MemoryStore, section: str) -> None:
    """Before: a parent run's config naming bob made alice's retriever answer with bob's."""
    retriever = MemoryRetriever(store=filled, user_id="alice", k=5)
    config: Any = {section: {"user_id": "bob"}}
    with pytest.raises(ScopeConflictError, match="answers for user 'alice'") as caught:
        retriever.invoke("green tea", config=config)
    assert (caught.value.expected, caught.value.given) == ("alice", "bob")
    with pytest.raises(ScopeConflictError):
        await retriever.ainvoke("green tea", config=config)


def test_missing_user_id_is_a_clear_error(filled: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="user_id is required"):
        MemoryRetriever(store=filled).invoke("green tea")


def test_filters_and_unknown_filter(filled: MemoryStore) -> None:
    retriever = MemoryRetriever(store=filled, user_id="alice", k=5,
                                filters={"category": "fact"})
    assert [d.page_content for d in retriever.invoke("green tea")] == ["alice lives in Lisbon"]
    with pytest.raises(InvalidInputError, match="unknown filter"):
        retriever.invoke("tea", colour="red")


async def test_async_matches_sync(filled: MemoryStore) -> None:
    retriever = MemoryRetriever(store=filled, user_id="alice", k=2)
    sync_docs = retriever.invoke("tea in Lisbon")
    async_docs = await retriever.ainvoke("tea in Lisbon")
    assert [d.id for d in async_docs] == [d.id for d in sync_docs]
    assert all(isinstance(d, Document) for d in async_docs)
