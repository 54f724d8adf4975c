"""The two systems ``pg_compare.py`` measures, behind one small interface, and their data.

Ours is ``MemoryStore``; the peer is LangGraph's ``PostgresStore`` configured as its docs
show (``index={"dims": 384, "embed": ..., "fields": ["text"]}``, pgvector HNSW defaults), one
namespace per user. Both get the same precomputed vectors through the same ``Embeddings``.
"""

from __future__ import annotations

import argparse
import random
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import bench_util  # noqa: F401  # puts the measured checkout on sys.path
import numpy as np
from store_bench import Dataset, LookupEmbeddings

K = 10
SYSTEMS = ("ours", "peer")
_WORD_TEXT = ("coffee tea hiking chess python rust paris tokyo dog cat piano guitar salad running "
              "swimming novels jazz opera cinema garden ocean mountain bread sister brother "
              "birthday meeting project deadline allergy doctor school camping pottery painting "
              "football yoga baking travel concert museum")
_WORDS = _WORD_TEXT.split()


# ---------------------------------------------------------------------- data
class Data:
    """store_bench's topic-clustered vectors, with texts made of each topic's words."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.users, self.per_user = args.users, args.per_user
        self.set = Dataset(args.users, args.per_user, topics=args.topics, noise=1.0,
                           extra=args.single_adds + 5 * args.writer_rows, queries=args.queries)
        topic = np.argmax(self.set.vectors @ self.set.centroids.T, axis=1)
        q_topic = np.argmax(self.set.query_vectors @ self.set.centroids.T, axis=1)
        self._topic, self._q_topic = topic, q_topic
        self.single = self.set.extra[:args.single_adds]
        self.writer_rows_each = args.writer_rows

    @staticmethod
    def _words(topic: int, salt: int) -> str:
        rng = random.Random(salt)
        vocab = [_WORDS[(topic * 7 + i) % len(_WORDS)] for i in range(5)]
        return " ".join(rng.choices(vocab, k=4))

    def text(self, row: int) -> str:
        return f"m{row} {self._words(int(self._topic[row]), row)}"

    def query(self, j: int) -> str:
        return f"q{j} {self._words(int(self._q_topic[j]), -j - 1)}"

    def user(self, u: int) -> str:
        return f"user-{u:04d}"

    def writer_rows(self, slot: int) -> list[int]:
        start = len(self.single) + slot * self.writer_rows_each
        return [int(r) for r in self.set.extra[start:start + self.writer_rows_each]]


class ListEmbeddings(LookupEmbeddings):
    """The lookup vectors as plain lists, which psycopg (the peer's driver) can send."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text).tolist()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- systems
class Ours:
    def __init__(self, url: str, data: Data, index: Path) -> None:
        from langchain_persistent_memory import MemoryStore

        self.data = data
        self.store = MemoryStore(url, embeddings=ListEmbeddings(data.set), index_path=index)

    def ingest(self, user: str, rows: list[int]) -> None:
        self.store.add_many([self.data.text(r) for r in rows], user_id=user)

    def add(self, user: str, text: str) -> str:
        return str(self.store.add(text, user_id=user).id)

    def dense(self, user: str, j: int, **options: Any) -> list[str]:
        hits: Any = self.store.search(self.data.query(j), user_id=user, k=K, mode="dense",
                                      **options)
        return [h.memory.content.split()[0] for h in hits]

    def hybrid(self, user: str, j: int) -> list[str]:
        hits: Any = self.store.search(self.data.query(j), user_id=user, k=K)
        return [str(h.memory.id) for h in hits]

    def delete(self, user: str, handle: str) -> None:
        self.store.delete(handle, user_id=user)

    def handles(self, user: str) -> set[str]:
        return {str(m.id) for m in self.store.list(user)}

    def close(self) -> None:
        self.store.close()


class Peer:
    def __init__(self, url: str, data: Data, index: Path) -> None:
        from langgraph.store.postgres import PostgresStore

        self.data, self.stack = data, ExitStack()
        conn = url.replace("postgresql+psycopg://", "postgresql://")
        config: Any = {"dims": 384, "embed": ListEmbeddings(data.set), "fields": ["text"]}
        self.store = self.stack.enter_context(PostgresStore.from_conn_string(conn, index=config))
        self.store.setup()  # idempotent: creates the tables and pgvector index once

    def ingest(self, user: str, rows: list[int]) -> None:
        from langgraph.store.base import PutOp

        self.store.batch([PutOp((user,), f"m{r}", {"text": self.data.text(r)}) for r in rows])

    def add(self, user: str, text: str) -> str:
        key = text.split()[0]
        self.store.put((user,), key, {"text": text})
        return key

    def dense(self, user: str, j: int, **options: Any) -> list[str]:
        return [item.key for item in self.store.search((user,), query=self.data.query(j),
                                                       limit=K)]

    hybrid = dense

    def delete(self, user: str, handle: str) -> None:
        self.store.delete((user,), handle)

    def handles(self, user: str) -> set[str]:
        return {item.key for item in self.store.search((user,), limit=100_000)}

    def close(self) -> None:
        self.stack.close()


def open_system(name: str, url: str, data: Data, index: Path) -> Ours | Peer:
    return Ours(url, data, index) if name == "ours" else Peer(url, data, index)
