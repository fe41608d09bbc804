"""Instants on the wire: epoch milliseconds, one conversion for every dialect.

Integer arithmetic on the timedelta, never float seconds: ``int(moment.timestamp() * 1000)`` lands 1 ms early
for some instants (2004-02-08T07:49:54.837Z is ...836 that way), so two renderers using the two methods told
clients different times for the same row. Milliseconds are floored (sub-millisecond digits dropped; before
1970 towards the past, as Python's ``//`` and Java's ``Instant.toEpochMilli``).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def epoch_ms(when: datetime) -> int:
    """An aware datetime as integer epoch milliseconds."""
    return (when - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime (OverflowError beyond the years 1..9999)."""
    return _EPOCH + ms * _MS


def iso(when: datetime) -> str:
    """An aware datetime in RFC 3339, UTC, to the microsecond (what ``as_of`` accepts back exactly)."""
    return when.astimezone(timezone.utc).isoformat()


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$")
_EPOCH_MS = re.compile(r"^-?\d{1,15}$")


def parse_instant(raw: str, now: datetime) -> datetime:
    """An instant on the wire: an RFC 3339 date-time with its offset (fractions beyond the microsecond are
    dropped), or integer epoch milliseconds. Epoch milliseconds name the *end* of that millisecond (but no
    later than ``now``): times are shown floored to the millisecond, so an event shown at ``t`` has happened
    by ``t``. ValueError when it is neither, or out of range."""
    if _EPOCH_MS.match(raw):
        try:
            start = from_epoch_ms(int(raw))
        except OverflowError:
            raise ValueError("out of range") from None
        return min(start + (_MS - timedelta(microseconds=1)), max(start, now))
    match = _RFC3339.match(raw)
    if match is None:
        raise ValueError("not an RFC 3339 date-time")
    day, time, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    return datetime.fromisoformat(f"{day}T{time}{'.' + fraction[:6].ljust(6, '0') if fraction else ''}{offset}")
