"""Instants on the wire: epoch milliseconds, one conversion for every dialect.

Integer arithmetic on the timedelta, never float seconds: ``int(moment.timestamp() * 1000)`` lands 1 ms early
for some instants (2004-02-08T07:49:54.837Z is ...836 that way), so two renderers using the two methods told
clients different times for the same row. Milliseconds are floored (sub-millisecond digits dropped; before
1970 towards the past, as Python's ``//`` and Java's ``Instant.toEpochMilli``).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def epoch_ms(when: datetime) -> int:
    """An aware datetime as integer epoch milliseconds."""
    return (when - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime (OverflowError beyond the years 1..9999)."""
    return _EPOCH + ms * _MS
