"""Operations from the facade's keyword arguments, with pydantic errors made ours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import InvalidInputError
from ..models import AddOp, Operation

__all__ = ["as_add_ops", "build_op"]

OpT = TypeVar("OpT", bound=BaseModel)


def build_op(kind: type[OpT], **fields: Any) -> OpT:
    """Build an operation; a wrong argument type becomes InvalidInputError like any bad input
    (pydantic's ValidationError is not one of ours)."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else None
        raise InvalidInputError(f"{field}: {error['msg']}", field=field) from None


def as_add_ops(items: Sequence[str | dict[str, Any] | AddOp]) -> list[Operation]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidInputError("items must be a list of strings or dicts", field="items")
    ops: list[Operation] = []
    for item in items:
        if isinstance(item, AddOp):
            ops.append(item)
        elif isinstance(item, dict):
            unknown = set(item) - set(AddOp.model_fields) - {"kind"}
            if unknown:
                raise InvalidInputError(f"unknown fields {sorted(unknown)} in add_many item")
            if "content" not in item:
                raise InvalidInputError("each add_many item needs 'content'", field="content")
            ops.append(build_op(AddOp, **item))
        else:
            ops.append(build_op(AddOp, content=item))
    return ops
