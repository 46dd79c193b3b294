"""Kubernetes timestamps on the wire, to and from aware UTC datetimes: the only parser and
formatters of them in the operator.

Kubernetes has two wire forms (k8s.io/apimachinery ``pkg/apis/meta/v1``): ``Time``, RFC 3339
with second precision (``2026-12-07T10:00:00Z``: ``creationTimestamp``, conditions'
``lastTransitionTime``, every ``status`` time of ours), and ``MicroTime``, six fractional
digits (``2026-12-07T10:00:00.123456Z``: a Lease's ``renewTime``, an Event's
``eventTime``). What this module must respect:

* formatting always writes UTC with a ``Z``, exactly as the API server does (a status
  compared byte for byte with the stored one must not differ by an offset notation);
* parsing accepts what the API server accepts for ``date-time`` (RFC 3339: any offset,
  lower-case ``t``/``z``, fractional seconds), and takes a naive value as UTC (the API
  server only ever writes UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Time`` or ``MicroTime``) to an aware UTC datetime.

    ``None`` and ``""`` give ``None``; a datetime is normalised to UTC (naive: taken as
    UTC). Raises ``ValueError`` for text that is not a timestamp.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).strip().upper().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """A ``Time``: RFC 3339 UTC, second precision (``2026-12-07T10:00:00Z``).

    A naive datetime is taken to be UTC already (the operator never uses local time).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def format_micro_time(moment: datetime) -> str:
    """A ``MicroTime``: RFC 3339 UTC, microseconds (``2026-12-07T10:00:00.000000Z``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(MICRO_TIME_FORMAT)
