"""Deterministic embeddings for unit tests: texts sharing words are close, no model needed."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from .openai_stub import embed_text


class HashEmbeddings(Embeddings):
    """Hashed bag-of-words vectors; counts calls so tests can prove what was (not) embedded."""

    def __init__(self, dim: int = 64, model: str = "hash-bow") -> None:
        self.dim = dim
        self.model = model
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [embed_text(t, self.dim) or [0.0] * self.dim for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls.append([text])
        return embed_text(text, self.dim)

    @property
    def texts_embedded(self) -> int:
        return sum(len(c) for c in self.calls)
