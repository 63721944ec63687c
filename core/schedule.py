"""Cron arithmetic the program needs: how far apart a schedule's runs can be.

Cloud Scheduler takes unix-cron (minute hour day-of-month month day-of-week, in
the job's time zone - UTC here). `max_interval_hours` expands a schedule over
a window and returns the longest gap between two runs: the worst case for an
alert on backup age and for a recovery point.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(v) for v in base.split("-"))
        else:
            start = int(base)
            end = high if step_text else start
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"'{part}' is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def fire_times(cron: str, start: datetime, days: int) -> list[datetime]:
    """Every run of `cron` (UTC) in the `days` after `start`, minute resolution."""
    minutes, hours, doms, months, dows = (_field(f, lo, hi) for f, (lo, hi) in zip(cron.split(), _RANGES, strict=False))
    dom_any, dow_any = cron.split()[2] == "*", cron.split()[4] == "*"
    runs: list[datetime] = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    for offset in range(days):
        current = day + timedelta(days=offset)
        dom_ok, dow_ok = current.day in doms, (current.weekday() + 1) % 7 in dows
        # unix-cron: when both day fields are restricted, either may match.
        day_ok = (dom_ok and dow_ok) if dom_any or dow_any else (dom_ok or dow_ok)
        if current.month in months and day_ok:
            runs.extend(current.replace(hour=h, minute=m) for h in sorted(hours) for m in sorted(minutes))
    return runs


def max_interval_hours(cron: str, days: int = 400) -> float:
    """The longest gap between two consecutive runs of `cron`, in hours, over `days` from 2026-01-01."""
    runs = fire_times(cron, datetime(2026, 1, 1, tzinfo=UTC), days)
    if len(runs) < 2:
        raise ValueError(f"'{cron}' runs fewer than twice in {days} days")
    return max((b - a).total_seconds() for a, b in itertools.pairwise(runs)) / 3600
