"""Epoch milliseconds on the wire: one conversion, exact integer arithmetic, the same in every dialect."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from registry.schemas import databricks, mlflow, native
from registry.schemas.timestamps import epoch_ms, from_epoch_ms

UTC = timezone.utc

# Instants whose float seconds * 1000 lands just below the integer (the float conversion answered 1 ms
# early), a sub-millisecond one, and one before 1970 (milliseconds are floored, not truncated toward 0).
INSTANTS = {
    "float-rounds-down-2004": (datetime(2004, 2, 8, 7, 49, 54, 837000, tzinfo=UTC), 1076226594837),
    "float-rounds-down-2038": (datetime(2038, 1, 30, 8, 31, 15, 621000, tzinfo=UTC), 2148453075621),
    "sub-millisecond": (datetime(2025, 3, 4, 5, 6, 7, 123999, tzinfo=UTC), 1741064767123),
    "before-1970": (datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC), -1),
}


@pytest.mark.parametrize("when, expected", INSTANTS.values(), ids=INSTANTS)
def test_epoch_ms_is_exact_and_floored(when, expected):
    assert epoch_ms(when) == expected
    assert type(epoch_ms(when)) is int


def test_an_instant_in_another_zone_is_the_same_millisecond():
    when = datetime(2024, 6, 1, 14, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    assert epoch_ms(when) == epoch_ms(when.astimezone(UTC))


@pytest.mark.parametrize("ms", [0, 1, -1, 1076226594837, 2148453075621, 253402300799999])
def test_from_epoch_ms_is_the_exact_inverse(ms):
    assert epoch_ms(from_epoch_ms(ms)) == ms
    assert from_epoch_ms(ms).tzinfo is not None


def test_every_dialect_renders_with_the_one_conversion():
    assert not hasattr(native, "millis")
    assert mlflow.epoch_ms is epoch_ms and databricks.epoch_ms is epoch_ms
