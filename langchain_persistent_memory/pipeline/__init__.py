"""The memory pipeline: conversation turns in, reconciled memories out."""

from .checks import Limits
from .manager import MemoryManager
from .prompts import PipelinePrompts
from .results import ConsolidationResult, MemoryChange, ProcessResult

__all__ = ["ConsolidationResult", "Limits", "MemoryChange", "MemoryManager", "PipelinePrompts",
           "ProcessResult"]
