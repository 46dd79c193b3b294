"""How many routine Events a Schedule posts: a per-Schedule token bucket.

Each tick creates a FlowRun, and a ``RunCreated`` Event per tick is what users of
Kubernetes CronJob expect (``SuccessfulCreate``). Unbounded, it doubles the API writes
of a frequent Schedule (``docs/decisions.md``, "Events of Schedules").

Kubernetes' own event recorder (client-go's ``EventSourceObjectSpamFilter``) solves the
same problem with a token bucket per (source, object): a burst of 25 Events, then one
every 5 minutes. :class:`EventBudget` is that bucket, with a smaller burst: a bucket is
full again after an operator restart, and 25 × 1,000 Schedules would be 25,000 Events
straight after each one. Only routine (``Normal``) Events
spend it; a ``Warning`` (missed ticks, ``Forbid``, an invalid spec) is always posted,
because it asks a human to act. The FlowRuns themselves, ``status.lastScheduleTime`` and
the operator's metrics still record every tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ROUTINE_EVENT_BURST = 5
"""Routine Events a Schedule may post at once (client-go's spam filter allows 25)."""
ROUTINE_EVENT_REFILL_SECONDS = 300.0
"""Seconds to earn one more routine Event after the burst (client-go: one per 5 min)."""


@dataclass
class EventBudget:
    """A token bucket: ``burst`` Events at once, then one per ``refill_seconds``."""

    burst: int = ROUTINE_EVENT_BURST
    refill_seconds: float = ROUTINE_EVENT_REFILL_SECONDS
    tokens: float | None = None
    """Tokens left; ``None`` until first used (a fresh bucket is full)."""
    updated: datetime | None = None
    """When ``tokens`` was last brought up to date."""

    def allow(self, now: datetime) -> bool:
        """Spend one token if there is one at ``now``; False means skip this Event."""
        tokens = float(self.burst) if self.tokens is None else self.tokens
        if self.updated is not None and now > self.updated:
            earned = (now - self.updated).total_seconds() / self.refill_seconds
            tokens = min(float(self.burst), tokens + earned)
        self.updated = max(now, self.updated) if self.updated is not None else now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


def should_post(event_type: str, budget: EventBudget, now: datetime) -> bool:
    """Whether to post an Event of ``event_type`` (``Normal``/``Warning``) now.

    Warnings always are; routine ``Normal`` Events spend the Schedule's budget.
    """
    return event_type != "Normal" or budget.allow(now)
