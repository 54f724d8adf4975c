"""The persistent store: SQL source of truth plus a derived, per-user FAISS index."""

from .embedding import LocalEmbeddings
from .memory_store import MemoryStore, default_database_url

__all__ = ["LocalEmbeddings", "MemoryStore", "default_database_url"]
