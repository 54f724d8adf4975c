"""Validate operations before any I/O: bad input never reaches the database."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..models import AddOp, DeleteOp, Operation, SupersedeOp, UpdateOp
from ..validation import (
    check_content,
    check_embedding,
    check_id,
    check_importance,
    check_label,
    check_metadata,
    check_metadata_json,
    check_new_memory_id,
    check_optional_id,
    content_hash,
    to_utc,
)
from .entity_rows import check_names
from .origins import provenance_values
from .write_types import PreparedOp

__all__ = ["prepare_ops"]


def prepare_ops(ops: list[Operation], *, max_chars: int) -> list[PreparedOp]:
    """Validate every operation before touching the database."""
    prepared: list[PreparedOp] = []
    for op in ops:
        if isinstance(op, AddOp):
            metadata, metadata_json = check_metadata_json(op.metadata)
            prepared.append(PreparedOp(
                kind="add", memory_id=check_new_memory_id(op.id),
                text=check_content(op.content, max_chars=max_chars),
                metadata_json=metadata_json,
                fields={
                    "category": check_label(op.category),
                    "importance": check_importance(op.importance),
                    "metadata": metadata,
                    "agent_id": check_optional_id(op.agent_id, "agent_id"),
                    "session_id": check_optional_id(op.session_id, "session_id"),
                    "valid_from": to_utc(op.valid_from, "valid_from"),
                },
                vector=None if op.embedding is None else check_embedding(op.embedding),
                names=check_names(op.entities),
            ))
        elif isinstance(op, UpdateOp):
            fields = _changed_fields(op)
            text = None if op.content is None else check_content(op.content, max_chars=max_chars)
            if text is None and not fields:
                raise InvalidInputError("update needs at least one field to change")
            prepared.append(PreparedOp(kind="update", memory_id=check_id(op.memory_id, "id"),
                                       text=text, fields=fields,
                                       names=check_names(op.entities)))
        elif isinstance(op, SupersedeOp):
            fields = {"valid_from": to_utc(op.valid_from, "valid_from"), **_changed_fields(op)}
            prepared.append(PreparedOp(
                kind="supersede", memory_id=check_id(op.memory_id, "id"),
                text=check_content(op.content, max_chars=max_chars), fields=fields,
                names=check_names(op.entities),
            ))
        elif isinstance(op, DeleteOp):
            prepared.append(PreparedOp(kind="delete", memory_id=check_id(op.memory_id, "id"),
                                       reason=op.reason))
        else:
            raise InvalidInputError(f"unknown operation {op!r}")
    direct: dict[str, Any] | None = None  # the default origin, one dict for the whole batch
    for done, op in zip(prepared, ops):
        if op.provenance is None:
            direct = direct if direct is not None else provenance_values(None)
            done.provenance = direct
        else:
            done.provenance = provenance_values(op.provenance)
        if done.text is not None:
            done.digest = content_hash(done.text)
    return prepared



def _changed_fields(op: UpdateOp | SupersedeOp) -> dict[str, Any]:
    """The optional fields an update or a supersession sets, checked (None: unchanged)."""
    fields: dict[str, Any] = {}
    if op.category is not None:
        fields["category"] = check_label(op.category)
    if op.importance is not None:
        fields["importance"] = check_importance(op.importance)
    if op.metadata is not None:
        fields["metadata"] = check_metadata(op.metadata)
    return fields
