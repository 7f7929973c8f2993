"""Streaming mode (SPEC §5): match documents as they arrive, with durable state.

`StreamMatcher` is the in-process API (feed, tick, drain, close); `DurableMatcher` adds the
checksummed log, snapshots and recovery; `matchcore.stream.io` has the sources and sinks used
by `matchcore stream`.
"""

from .matcher import FeedResult, References, StreamMatcher
from .messages import (
    BadMessage,
    Inventory,
    Item,
    Message,
    Order,
    Payment,
    VerdictEvent,
    Waybill,
)
from .state import DurableMatcher, RecoveryReport

__all__ = [
    "BadMessage",
    "DurableMatcher",
    "FeedResult",
    "Inventory",
    "Item",
    "Message",
    "Order",
    "Payment",
    "RecoveryReport",
    "References",
    "StreamMatcher",
    "VerdictEvent",
    "Waybill",
]
