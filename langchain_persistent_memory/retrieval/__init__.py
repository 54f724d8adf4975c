"""Retrieval quality: hybrid fusion, recency/importance, MMR, query dates, prompt rendering.

``MemoryStore.search`` applies the ranking (options in :class:`SearchOptions`);
:func:`render_memories` turns the hits into prompt text within a token budget.
"""

from .dates import TimeRange, parse_query_time
from .options import SearchOptions
from .render import render_memories, token_counter

__all__ = ["SearchOptions", "TimeRange", "parse_query_time", "render_memories", "token_counter"]
