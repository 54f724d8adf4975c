"""The memory pipeline: conversation turns in, reconciled memories out."""

from .manager import MemoryManager
from .parsing import Limits
from .prompts import PipelinePrompts
from .results import ConsolidationResult, MemoryChange, ProcessResult

__all__ = ["ConsolidationResult", "Limits", "MemoryChange", "MemoryManager", "PipelinePrompts",
           "ProcessResult"]
