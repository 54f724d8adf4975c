"""What flows through the write path: validated operations in, their results out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models import Memory
from .reader import LoadedRow

__all__ = ["Applied", "Change", "Committed", "PreparedOp"]


@dataclass
class PreparedOp:
    """A validated operation; ``text`` is set when new content needs a vector, ``digest``
    is its content hash (computed once: every later step keys on it)."""

    kind: str
    memory_id: str | None = None
    text: str | None = None
    digest: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    vector: np.ndarray | None = None
    names: tuple[str, ...] = ()  # entity names given with the operation
    metadata_json: str | None = None  # an add's metadata as validation dumped it
    provenance: dict[str, Any] = field(default_factory=dict)  # lpm_provenance values


@dataclass
class Change:
    """What happened to one memory, for the in-memory partition of its user."""

    user_id: str
    pk: int
    op: str  # "add" (``row`` holds it), "delete", "retire" (now superseded), or "other"
    # (the partition reloads)
    row: LoadedRow | None = None


@dataclass
class Committed:
    """A transaction's effect on partitions: each touched user's new version, the changes."""

    versions: dict[str, int]
    changes: list[Change]



@dataclass
class Applied:
    """What one operation did: the resulting memory (or the deleted one)."""

    kind: str
    memory: Memory
    previous: Memory | None = None
    duplicate_of_existing: bool = False
