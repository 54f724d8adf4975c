"""Consolidation: merge a user's near-duplicate memories into fewer, better ones.

Clusters come from the embeddings already stored in SQL (no embedding calls); the model is
asked once per cluster. A merge supersedes the first original by the merged text and
deletes the others with a reason naming the merged memory, so every original stays readable
in history. Each cluster is its own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from langchain_core.messages import HumanMessage, SystemMessage

from ..errors import ExtractionError, InvalidInputError, MemoryNotFoundError
from ..models import DeleteOp, Memory, Operation, SupersedeOp, UpdateOp
from .checks import Limits, PlannedOp, check_category, check_fact, check_importance, check_items
from .extract import Checked
from .model_answers import MergePlan
from .prompts import PipelinePrompts
from .reconcile import describe_memories
from .recover import recover_items
from .results import ConsolidationResult, MemoryChange
from .steps import Apply, FetchVectors, Steps
from .turn import Usage, ask_validated

__all__ = ["consolidate_steps", "find_clusters", "validate_merges"]

logger = logging.getLogger("langchain_persistent_memory.pipeline")


def find_clusters(vectors: np.ndarray, *, threshold: float, max_size: int) -> list[list[int]]:
    """Groups of row indices whose cosine similarity to the group's seed is ≥ ``threshold``.

    Greedy and deterministic: rows are seeds in order; each takes its most similar
    unassigned neighbours (at most ``max_size`` per group). Singletons are not returned.
    """
    if len(vectors) < 2:
        return []
    matrix = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = matrix @ matrix.T
    free = np.ones(len(vectors), dtype=bool)
    clusters = []
    for seed in range(len(vectors)):
        if not free[seed]:
            continue
        free[seed] = False
        candidates = np.where(free & (sims[seed] >= threshold))[0]
        chosen = candidates[np.argsort(-sims[seed][candidates])][:max_size - 1]
        if chosen.size:
            free[chosen] = False
            clusters.append([seed, *sorted(int(i) for i in chosen)])
    return clusters


def validate_merges(payload: Any, raw_text: str, handles: dict[str, Memory], *,
                    limits: Limits) -> Checked:
    """Check a :class:`MergePlan`: known handles, each memory merged at most once."""
    items, cut = recover_items(payload, raw_text, "merges")
    merges = []
    used: set[str] = set()
    for i, item in enumerate(check_items(items, "merges", limits)):
        where = f"merges[{i}]"
        sources = item.get("sources")
        if not isinstance(sources, list) or not sources or \
                not all(isinstance(s, str) for s in sources):
            raise ExtractionError(f"{where}: 'sources' must be a non-empty list of handles")
        clean = tuple(dict.fromkeys(s.strip() for s in sources))
        for handle in clean:
            if handle not in handles:
                raise ExtractionError(f"{where}: unknown handle {handle[:40]!r}")
            if handle in used:
                raise ExtractionError(f"{where}: {handle} is already part of another merge")
            used.add(handle)
        merges.append(PlannedOp(
            op="MERGE", sources=clean, content=check_fact(item.get("content"), where, limits),
            category=check_category(item.get("category"), where, limits),
            importance=check_importance(item.get("importance"), where),
        ))
    return Checked(merges, [f"merges: {cut} cut off by a truncated answer"] if cut else [])


def _merge_check(handles: dict[str, Memory], limits: Limits) -> Callable[[Any, str, bool], Checked]:
    def check(payload: Any, raw_text: str, final: bool) -> Checked:
        return validate_merges(payload, raw_text, handles, limits=limits)

    return check


def _merge_ops(merges: Sequence[PlannedOp], handles: dict[str, Memory]) -> list[Operation]:
    ops: list[Operation] = []
    for merge in merges:
        originals = [handles[h] for h in merge.sources]
        first, rest = originals[0], originals[1:]
        if not rest:
            if merge.content != first.content:
                ops.append(UpdateOp(memory_id=first.id, content=merge.content,
                                    category=merge.category, importance=merge.importance))
            continue
        importance = merge.importance if merge.importance is not None else \
            max(m.importance for m in originals)
        ops.append(SupersedeOp(memory_id=first.id, content=merge.content,
                               category=merge.category or first.category,
                               importance=importance,
                               valid_from=min(m.valid_from for m in originals)))
        ops.extend(DeleteOp(memory_id=m.id, reason=f"merged with {first.id} by consolidation")
                   for m in rest)
    return ops


def consolidate_steps(user_id: str, *, prompts: PipelinePrompts, limits: Limits,
                      threshold: float, max_cluster: int,
                      max_memories: int) -> Steps[ConsolidationResult]:
    """Find clusters, ask the model once per cluster, apply each merge atomically."""
    memories, vectors = yield FetchVectors(max_memories)
    clusters = find_clusters(vectors, threshold=threshold, max_size=max_cluster) \
        if memories else []
    usage = Usage()
    changes: list[MemoryChange] = []
    errors: list[str] = []
    for number, cluster in enumerate(clusters, 1):
        group = sorted((memories[i] for i in cluster), key=lambda m: m.valid_from)
        handles = {f"m{i + 1}": m for i, m in enumerate(group)}
        merges = yield from ask_validated(
            [SystemMessage(content=prompts.consolidate_system),
             HumanMessage(content=prompts.consolidate_template.format(
                 memories=describe_memories(handles)))],
            MergePlan, "lpm.consolidate",
            _merge_check(handles, limits), prompts, usage)
        if merges is None:
            errors.append(f"cluster {number}: {usage.last_error}")
            continue
        ops = _merge_ops(merges, handles)
        if not ops:
            continue
        try:
            applied = yield Apply(ops)
        except (MemoryNotFoundError, InvalidInputError) as exc:
            errors.append(f"cluster {number}: {exc}")
            continue
        changes.extend(MemoryChange(a.kind, a.memory, previous=a.previous) for a in applied)
    for error in errors:
        logger.warning("consolidation of user %r left a cluster unchanged: %s", user_id, error)
    return ConsolidationResult(user_id=user_id, clusters=len(clusters),
                               operations=tuple(changes), errors=tuple(errors),
                               llm_calls=usage.llm_calls, input_tokens=usage.input_tokens,
                               output_tokens=usage.output_tokens)


