"""The entity extractor and the entity rows a batched ingest writes are frozen: for a varied
generated corpus (``tests/support/entity_corpus.py``) they must equal, entity for entity and
row for row, what the reference implementation (commit dc96025, before the ingest speed-ups)
produced — on SQLite and PostgreSQL. ``tests/data/entity_golden.json`` holds that output;
``python -m tests.test_entity_golden`` rewrites it (only do so for an intended change)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from langchain_persistent_memory import AddOp, MemoryStore
from langchain_persistent_memory.entities import Entity, extract_entities
from langchain_persistent_memory.store.entity_rows import check_names, memory_links
from langchain_persistent_memory.store.schema import entities, memories, memory_entities
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.entity_corpus import corpus, given_names

GOLDEN = Path(__file__).parent / "data" / "entity_golden.json"
TEXTS = corpus()
GIVEN = given_names(TEXTS)
CORPUS_DIGEST = hashlib.sha256("\0".join(TEXTS).encode()).hexdigest()
BATCHES = (500, 500, len(TEXTS) - 1000)  # entities first seen in one batch, named in the next


def _plain(found: list[Entity]) -> list[list[Any]]:
    return [[e.name, e.key, e.kind, e.subject, list(e.aliases)] for e in found]


def extracted() -> list[list[list[Any]]]:
    return [_plain(extract_entities(text)) for text in TEXTS]


def linked() -> list[list[list[Any]]]:
    return [_plain(memory_links(text, check_names(given) if given else ()))
            for text, given in zip(TEXTS, GIVEN)]


def stored(store: MemoryStore) -> dict[str, list[list[Any]]]:
    """The entity rows an ingest of the corpus leaves in SQL, by position in the corpus."""
    ids: list[str] = []
    for user in ("u1", "u2"):
        start = 0
        for size in BATCHES:
            ops = [AddOp(content=t, entities=g or None) for t, g in
                   zip(TEXTS[start:start + size], GIVEN[start:start + size])]
            added = store.add_many(ops, user_id=user)  # type: ignore[arg-type]
            if user == "u1":
                ids.extend(m.id for m in added)
            start += size
    position = {memory_id: i for i, memory_id in enumerate(ids)}
    with store.engine.connect() as conn:
        rows = conn.execute(select(entities.c.key, entities.c.name, entities.c.kind)
                            .where(entities.c.user_id == "u1").order_by(entities.c.key))
        links = conn.execute(
            select(memories.c.id, memory_entities.c.entity_key, memory_entities.c.subject,
                   memory_entities.c.aliases)
            .join(memories, memories.c.pk == memory_entities.c.memory_pk)
            .where(memory_entities.c.user_id == "u1"))
        return {"entities": [list(r) for r in rows],
                "links": sorted([position[r[0]], r[1], r[2], list(r[3] or [])] for r in links)}


def test_the_extractor_gives_the_reference_output() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["corpus"] == CORPUS_DIGEST  # the generator still makes the same texts
    for text, want, got in zip(TEXTS, golden["extracted"], extracted()):
        assert got == want, text
    for text, want, got in zip(TEXTS, golden["linked"], linked()):
        assert got == want, text


def test_a_batched_ingest_writes_the_reference_rows(store_url: str) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    with MemoryStore(store_url, embeddings=HashEmbeddings(), dedupe=False) as store:
        rows = stored(store)
        assert rows["entities"] == golden["entities"]
        assert rows["links"] == golden["links"]
        u1, u2 = ([(e.key, e.name, e.kind, e.subject_of, e.aliases)
                   for e in store.entities(user)] for user in ("u1", "u2"))
        assert u2 == u1  # the same texts for another user: the same entities, apart
        assert index_mismatches(store) == []


if __name__ == "__main__":  # regenerate the reference output (an intended change only)
    with MemoryStore("sqlite://", embeddings=HashEmbeddings(), dedupe=False) as reference:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"corpus": CORPUS_DIGEST, "extracted": extracted(),
                                      "linked": linked(), **stored(reference)},
                                     ensure_ascii=False, separators=(",", ":")) + "\n",
                          encoding="utf-8")
