"""The keyword index beside the vector index: SQLite FTS5 or PostgreSQL full-text search.

Why the database's own full-text engine: it lives in the same file / server as the rows, so
every write path keeps it current inside the same transaction without extra code —
SQLite through triggers on ``lpm_memories`` feeding an external-content FTS5 table (no second
copy of the text), PostgreSQL through a generated ``tsvector`` column with a GIN index.
Searches are scoped by ``user_id`` in the same SQL statement, so no other user's memory is
ever returned. Query text is reduced to plain word tokens OR-ed together, so user input can
never inject FTS syntax.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Select,
    case,
    column,
    func,
    literal_column,
    table,
    text,
)

from .filters import SearchFilters, build_filter_query
from .schema import memories

__all__ = ["STOPWORDS", "create_keyword_index", "keyword_query", "query_phrases", "query_terms",
           "scrub_keyword_index"]

FTS_TABLE = "lpm_fts"
TSV_COLUMN = "content_tsv"
_MAX_TERMS = 32

# Function words carry no topic; dropping them keeps OR-queries from matching everything.
_STOPWORD_TEXT = """
    a an the and or but if of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once
    here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now i me my myself we our ours
    ourselves you your yours yourself yourselves he him his himself she her hers herself it its
    itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing would could ought let
    m re ve ll d"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)

_SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(content, "
    "content='lpm_memories', content_rowid='pk', tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER IF NOT EXISTS lpm_fts_ai AFTER INSERT ON lpm_memories BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.pk, new.content); END",
    f"CREATE TRIGGER IF NOT EXISTS lpm_fts_ad AFTER DELETE ON lpm_memories BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) VALUES ('delete', old.pk, old.content);"
    " END",
    f"CREATE TRIGGER IF NOT EXISTS lpm_fts_au AFTER UPDATE OF content ON lpm_memories BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) VALUES ('delete', old.pk, old.content);"
    f" INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.pk, new.content); END",
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",  # index existing rows
)
_PG_DDL = (
    f"ALTER TABLE lpm_memories ADD COLUMN IF NOT EXISTS {TSV_COLUMN} tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED",
    f"CREATE INDEX IF NOT EXISTS ix_lpm_memories_tsv ON lpm_memories USING GIN ({TSV_COLUMN})",
)


def create_keyword_index(conn: Connection) -> None:
    """Schema migration v2: create the keyword index and fill it from existing rows."""
    statements = _SQLITE_DDL if conn.dialect.name == "sqlite" else _PG_DDL
    for statement in statements:
        conn.exec_driver_sql(statement)


def scrub_keyword_index(conn: Connection) -> None:
    """After a purge: merge FTS5 segments so no token of erased text stays on disk.

    FTS5 marks deleted documents and drops their postings only when segments merge;
    'optimize' merges everything now (with ``secure_delete`` the freed pages are zeroed).
    PostgreSQL needs nothing: the tsvector lives in the deleted row itself.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('optimize')")


def query_terms(query: str) -> list[str]:
    """Lower-cased content words of ``query``, de-duplicated, in order (no FTS syntax)."""
    seen: dict[str, None] = {}
    for token in _TOKEN_RE.findall(query.lower()):
        if token not in STOPWORDS and len(seen) < _MAX_TERMS:
            seen.setdefault(token, None)
    return list(seen)


def query_phrases(query: str) -> list[tuple[str, str]]:
    """Pairs of content words next to each other in ``query`` ("meteor shower"), in order.

    Searched as phrases beside the single words, so a memory with the words side by side
    outscores one that has them apart (measured on LoCoMo: benchmarks/README.md).
    """
    tokens = _TOKEN_RE.findall(query.lower())
    pairs = dict.fromkeys((a, b) for a, b in pairwise(tokens)
                          if a not in STOPWORDS and b not in STOPWORDS)
    return list(pairs)[:_MAX_TERMS]


def keyword_query(conn: Connection, user_id: str, filters: SearchFilters, terms: list[str],
                  limit: int, columns: list[Any],
                  phrases: list[tuple[str, str]] | None = None) -> Select[Any]:
    """SELECT ``columns`` plus ``kw_score`` (higher is better) of the user's memories
    matching any of ``terms`` or ``phrases``, best first. They must come from
    :func:`query_terms` / :func:`query_phrases`; a phrase match adds to the words' score."""
    base = build_filter_query(user_id, filters, columns=columns)
    phrases = phrases or []
    if conn.dialect.name == "sqlite":
        fts = table(FTS_TABLE, column("rowid"))
        match = " OR ".join([*('"' + t.replace('"', '""') + '"' for t in terms),
                             *('"' + " ".join(p).replace('"', '""') + '"' for p in phrases)])
        score = (-func.bm25(literal_column(FTS_TABLE))).label("kw_score")
        return (base.add_columns(score)
                .join(fts, fts.c.rowid == memories.c.pk)
                .where(text(f"{FTS_TABLE} MATCH :kw_match").bindparams(kw_match=match))
                .order_by(score.desc()).limit(limit))
    english = literal_column("'english'::regconfig")
    tsquery = func.to_tsquery(english, " | ".join(map(_pg_lexeme, terms)))
    tsv = literal_column(TSV_COLUMN)
    # Normalisation 1 divides by 1 + log(length): long memories do not win on size alone.
    score = func.ts_rank(tsv, tsquery, 1, type_=Float)
    if phrases:
        # ts_rank ignores the phrase operator, so a phrase match is scored separately.
        phrased = func.to_tsquery(english, " | ".join(
            f"({_pg_lexeme(a)} <-> {_pg_lexeme(b)})" for a, b in phrases))
        score = score + case((tsv.op("@@")(phrased), func.ts_rank(tsv, phrased, 1,
                                                                  type_=Float)), else_=0.0)
    score = score.label("kw_score")
    return (base.add_columns(score).where(tsv.op("@@")(tsquery))
            .order_by(score.desc()).limit(limit))


def _pg_lexeme(term: str) -> str:
    """Quote a word for ``to_tsquery`` so it is taken literally (stemmed, never parsed)."""
    return "'" + term.replace("'", "''").replace("\\", "\\\\") + "'"
