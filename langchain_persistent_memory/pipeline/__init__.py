"""The memory pipeline: conversation turns in, reconciled memories out.

The stages, in the order a turn meets them:

* :mod:`.messages` — whatever the caller passes becomes ``(role, text)`` lines;
* :mod:`.gate` — small talk and pure questions stop here, with no model call;
* :mod:`.extract` — what the model is shown of the turn (neutralised, roles marked, within
  budgets) and which of its facts the user's own words ground;
* :mod:`.reconcile` — the model's operations checked against this turn's memories and
  turned into store operations with their provenance;
* :mod:`.recover` / :mod:`.checks` — reading a model answer leniently, checking it strictly;
  :mod:`.model_answers` — the answers the model is asked for;
* :mod:`.turn` — the flow of one turn; :mod:`.consolidate` — merging near-duplicates;
* :mod:`.manager`, :mod:`.steps`, :mod:`.structured`, :mod:`.worker`, :mod:`.user_locks` —
  running it all with blocking, async or background I/O.
"""

from .checks import Limits
from .manager import MemoryManager
from .prompts import PipelinePrompts
from .results import ConsolidationResult, MemoryChange, ProcessResult

__all__ = ["ConsolidationResult", "Limits", "MemoryChange", "MemoryManager", "PipelinePrompts",
           "ProcessResult"]
