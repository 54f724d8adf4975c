"""The persistent store: SQL source of truth plus per-user partitions derived from it."""

from .embedding import LocalEmbeddings
from .entity_rows import EntityRow
from .forget_guards import ForgetGuard
from .memory_store import MemoryStore, default_database_url
from .partitions import IndexInfo, parse_budget

__all__ = ["EntityRow", "ForgetGuard", "IndexInfo", "LocalEmbeddings", "MemoryStore",
           "default_database_url", "parse_budget"]
