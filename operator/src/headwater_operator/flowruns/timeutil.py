"""RFC 3339 timestamps as Kubernetes writes them, to and from aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: object) -> datetime | None:
    """Parse ``2024-05-01T10:00:00Z`` (or any ISO 8601 with offset) to an aware UTC datetime.

    Returns ``None`` for ``None``/empty input; naive inputs are taken as UTC because the
    API server only ever writes UTC. RFC 3339 letters are case-insensitive
    (``2024-05-01t10:00:00z``), and the API server's ``date-time`` format accepts them, so
    a user's ``spec.scheduledTime`` may carry them.
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


def format_time(value: datetime) -> str:
    """Format an aware datetime the way Kubernetes does: second precision, ``Z`` suffix."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
