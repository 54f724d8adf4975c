"""What one worker process holds for the app's lifetime: settings, the tenants' stores,
the turn runner and the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from .config import ServiceConfig
from .guards import RateLimiter
from .jobs import JobRunner
from .tenants import TenantStores

__all__ = ["ServiceState"]


@dataclass
class ServiceState:
    config: ServiceConfig
    tenants: TenantStores
    runner: JobRunner
    limiter: RateLimiter
