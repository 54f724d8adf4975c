"""Bulk inserts: many rows a statement, values encoded exactly as SQLAlchemy would.

Batched ingest is the hot write; on SQLite it goes through the driver's cursor with
multi-row ``VALUES`` (see :func:`insert_rows`), on PostgreSQL through SQLAlchemy's
batched ``RETURNING``.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from sqlalchemy import Connection, Table, insert

__all__ = ["as_stored_json", "insert_rows"]


def insert_rows(conn: Connection, table: Table, columns: dict[str, list[Any]], *,
            encoded: dict[str, list[Any]] | None = None) -> list[int]:
    """Insert rows given column by column; return their generated keys in order (for a
    table with an integer key; callers of other tables ignore them).
    ``encoded`` (SQLite): values some rows already have as the column stores them (None:
    encode this row's value)."""
    if conn.dialect.name == "sqlite":
        return _sqlite_insert(conn, table, columns, encoded or {})
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    if len(rows) == 1:  # a single add, the common case: no batched RETURNING machinery
        key_row = conn.execute(insert(table), rows[0]).inserted_primary_key
        assert key_row is not None
        return [int(key_row[0])]
    key = next(iter(table.primary_key.columns))
    stmt = insert(table).returning(key, sort_by_parameter_order=True)
    return [int(k) for k in conn.execute(stmt, rows).scalars().all()]


def _sqlite_insert(conn: Connection, table: Table, columns: dict[str, list[Any]],
                   encoded: dict[str, list[Any]]) -> list[int]:
    """SQLite's fast path: multi-row ``INSERT ... VALUES`` on the transaction's own DBAPI
    connection.

    One statement for many rows, not ``executemany``: the FTS5 insert trigger flushes the
    keyword index's pending terms at the end of every statement, and once per row made
    it most of an add's cost. Writers hold the database lock (BEGIN IMMEDIATE) and the
    rows take ``max(pk) + 1, + 2, ...`` in order, so the statement's last rowid names them
    all. Values go through the columns' own SQLAlchemy bind processors, so they are stored
    exactly as the general path stores them.
    """
    names = list(columns)
    processors = _bind_processors(table, conn.dialect)
    bound = [_bound(processors[name], columns[name], encoded.get(name)) for name in names]
    width, total = len(names), len(bound[0])
    flat: list[Any] = [None] * (width * total)
    for j, values in enumerate(bound):
        flat[j::width] = values
    driver = conn.connection.driver_connection
    per = max(1, _max_params(driver) // width)
    row = f"({', '.join('?' * width)})"
    cur = driver.cursor()  # type: ignore[union-attr]
    keys: list[int] = []
    for start in range(0, total, per):
        n = min(per, total - start)
        cur.execute(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
                    f"{', '.join([row] * n)}", flat[start * width:(start + n) * width])
        last = cur.lastrowid
        keys.extend(range(last - n + 1, last + 1))
    cur.close()
    return keys


def _max_params(driver: Any) -> int:
    """Most ``?`` one SQLite statement may hold (32766 since SQLite 3.32, 999 before)."""
    getlimit = getattr(driver, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


@functools.lru_cache(maxsize=64)
def _bind_processors(table: Table, dialect: Any) -> dict[str, Any]:
    """Each column's bind processor, built once per table and dialect (per call it costs
    more than a single add's inserts)."""
    # dialect_impl: a TypeDecorator's own bind_processor wraps the generic type, which would
    # hand sqlite3 raw datetimes (stored without ".000000" at whole seconds, so they would
    # sort before the same instant bound by SQLAlchemy in a since/until filter).
    return {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.c}


def _bound(process: Any, values: list[Any], ready: list[Any] | None = None) -> list[Any]:
    """One column's values through its bind processor, except those ``ready``. A batch's
    timestamps are one object and its JSON columns mostly empty: such a column is converted
    once, not per row, and also through the sqlite3 adapter the driver would apply to each
    row (datetime -> text)."""
    if process is None:
        return values
    first = values[0]
    if all(v is first for v in values) or (
            type(first) in (dict, list) and all(type(v) is type(first) and not v
                                                  for v in values)):
        value = process(first)
        adapt = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
        return [value if adapt is None else adapt(value)] * len(values)
    if ready is None:
        return [process(v) for v in values]
    return [process(v) if done is None else done for v, done in zip(values, ready)]


def as_stored_json(texts: list[str | None]) -> list[str | None]:
    """Validation's JSON texts where they equal what a JSON column stores on SQLite (the
    default ``json.dumps``, which escapes non-ASCII: so ASCII texts only)."""
    return [t if t is not None and t.isascii() else None for t in texts]

