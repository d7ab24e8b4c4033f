"""Which hours of the hourly aggregate the writer refreshes after readings arrive late."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.aggregates import late_window, union

NOW = datetime(2026, 12, 7, 18, 28, 13, tzinfo=timezone.utc)
KEEP = timedelta(days=730)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_live_readings_need_no_refresh():
    # The policy leaves the last hour (and the hour it began in) to real time.
    assert late_window([NOW, NOW - timedelta(minutes=50)], NOW, KEEP) is None
    assert late_window([at("2026-12-07T17:00:00+00:00")], NOW, KEEP) is None
    assert late_window([], NOW, KEEP) is None


def test_late_readings_refresh_the_whole_hours_they_fall_in():
    window = late_window([at("2026-12-07T16:59:59+00:00"), NOW], NOW, KEEP)
    assert window == (at("2026-12-07T16:00:00+00:00"), at("2026-12-07T17:00:00+00:00"))
    # A backfill ten days back, in another zone's notation: UTC hours.
    window = late_window([at("2026-11-27T10:15:00+01:00"), at("2026-11-27T19:39:26+00:00"),
                          NOW - timedelta(seconds=5)], NOW, KEEP)
    assert window == (at("2026-11-27T09:00:00+00:00"), at("2026-11-27T20:00:00+00:00"))


def test_hours_the_retention_drops_are_left_alone():
    gone = NOW - KEEP
    assert late_window([gone - timedelta(days=3), gone + timedelta(hours=2)], NOW, KEEP) is None
    kept = NOW - KEEP + timedelta(days=2)
    assert late_window([gone, kept], NOW, KEEP) == (
        kept.replace(minute=0, second=0), kept.replace(minute=0, second=0) + timedelta(hours=1))
    # Without a retention policy every late hour counts.
    assert late_window([gone], NOW, None) is not None


def test_a_failed_refresh_is_joined_with_the_next():
    a = (at("2026-12-01T10:00:00+00:00"), at("2026-12-01T11:00:00+00:00"))
    b = (at("2026-11-20T03:00:00+00:00"), at("2026-11-20T05:00:00+00:00"))
    assert union(a, None) == a and union(None, b) == b and union(None, None) is None
    assert union(a, b) == (b[0], a[1])
