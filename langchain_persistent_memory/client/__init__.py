"""HTTP clients of the memory service (``lpm serve``): ``MemoryClient`` and
``AsyncMemoryClient``. They need ``httpx`` only, never FastAPI."""

from ._aio import AsyncMemoryClient
from ._sync import MemoryClient

__all__ = ["AsyncMemoryClient", "MemoryClient"]
