"""Holds jobs: uncollected copies move on to the next member in the queue."""

from __future__ import annotations

import logging
from typing import Any

from library_service.holds.service import HoldService

logger = logging.getLogger(__name__)

EXPIRY_BATCH = 500


async def expire_uncollected_holds(ctx: dict[str, Any]) -> int:
    """READY holds past their pickup day expire; their copies go to the next in line."""
    services = ctx["services"]
    service: HoldService = services.holds(services.unit_of_work())
    expired = await service.expire_uncollected(limit=EXPIRY_BATCH)
    if expired:
        logger.info("%d uncollected hold(s) expired", expired)
    return expired
