"""The memory service: REST API (FastAPI), MCP server, turn jobs. Needs the ``server`` extra.

Run it with ``lpm serve``; call it with :class:`~langchain_persistent_memory.MemoryClient`.
"""

from .app import app_from_env, create_app
from .config import ServiceConfig
from .tenants import tenant_url

__all__ = ["ServiceConfig", "app_from_env", "create_app", "tenant_url"]
