"""Forecasts for the planner: when a litter bin will be full, when a tree pit will be dry.

Pure numpy, no I/O, no wall clock. Times are float epoch seconds (UTC); local weekday and hour
come from a ``tz`` (default Europe/Berlin). Readings may arrive unsorted, with gaps and with
duplicated times: every function sorts them, averages readings that share a time and drops
non-finite values first.

Bins (fill level, percent of the usable volume):

* :func:`detect_emptyings` finds the drops that are emptyings and not sensor glitches (a bag
  hanging in the lid reads "full" for hours; single readings of 0 or 100).
* :func:`fill_profile` learns how the fill rate varies by local weekday and hour.
* :func:`forecast_fill` gives the fill rate of the current cycle (since the last emptying), a
  10-90 % band, and when the bin reaches ``full_pct`` (point, early, late), following the
  weekday profile.

Soil (volumetric water content, %):

* :func:`forecast_dry` gives the drying rate since the last wetting (rain or watering) and when
  the soil reaches a dry threshold.

Rates are robust slopes (Theil-Sen: the median of pairwise slopes), so a few wrong readings
cannot tilt them. Bands come from a backtest on the series itself: how far the rate so far has
missed what the next day brought (:func:`_backtest_ratios`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

BERLIN = ZoneInfo("Europe/Berlin")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
HOUR_S = 3600.0
DAY_S = 86400.0
WEEK_HOURS = 168

LEVEL_CAP_PCT = 120.0        # litter above the rim: the simulator's OVERFLOW, a sensor's limit
# A full bin stops showing how fast litter comes (it piles beside it, the sensor sees the top
# of the pile): readings from here on say nothing about the rate (an overflowing weekend would
# otherwise teach the profile that weekends are quiet).
SATURATED_PCT = 100.0
MAX_GLITCH_H = 8.0           # a bag stuck in the lid reads "full" for 1-6 h; a little margin
LOW_GLITCH_H = 2.0           # a sensor reading 0 does so for a reading or two ...
LOW_GLITCH_MAX_PCT = 10.0    # ... and reads about 0 (no echo: the bottom or beyond)
CONFIRM_READINGS = 4         # an emptying must show in the next readings (2 h at 30 min) ...
MIN_CONFIRM_READINGS = 2     # ... of which at least this many exist (one low reading is a guess)
MIN_CYCLE_H = 6.0            # a shorter cycle (or one with fewer points) cannot give a rate
MIN_CYCLE_POINTS = 4
MAX_PAIR_LAG_H = 24.0        # pairs a day apart average out the daily pattern and the noise
MAX_FIT_POINTS = 96          # Theil-Sen is O(n^2): thin longer series evenly (4,560 pairs)
MIN_DAY_PAIRS = 12           # fewer backtest days than this say nothing about the spread
# Without history: the next day's rate within -32 %/+47 % (log sd 0.3) of the rate so far, a
# guess in the range the simulator's busy days and weather give; learnt when there is history.
DEFAULT_DAY_RATIOS = (math.exp(-1.2816 * 0.3), math.exp(1.2816 * 0.3))
DAY_SPREAD = 0.3             # likewise a day's litter vs its weekday's, until the data show it
BACKTEST_MIN_AGE_H = 12.0    # a rate from less than half a day of a cycle is not what we use
# The bins' backtest runs on the profile clock, and the profile was learnt from those very days:
# in-sample it misses less than on days to come. Its log-ratios are stretched so that the 10-90 %
# band holds about 80 % of the true crossings in the simulator (78-93 % in April, June,
# September and November with two weeks or more of history; less with one week).
BAND_WIDEN = 1.7
MAX_SHORT_WIDEN = 2.0        # ... and by up to twice that when full is less than a day away
# Soil has no learnt profile, but its backtest's "rate before" is a plain two-point slope, not
# the forecast's: stretched a little so that the band holds ~80 % of crossings (May-August).
SOIL_BAND_WIDEN = 1.3
MIN_DAY_RATIO = 0.05         # a day without litter (or a soil day without drying) happens
PROFILE_MAX_GAP_H = 2.0      # longer gaps cannot say in which hour the litter came
PROFILE_PRIOR_CELL_H = 4.0   # a cell's shrinkage toward weekday x hour, in hours of its data
PROFILE_PRIOR_HOUR_N = 6     # an hour-of-day's, in days seen, while there is too little data
HISTORY_CYCLES = 6           # earlier cycles the fallback rate looks at
WET_RISE_PCT = 1.5           # a rise of the soil moisture this large is rain or watering
WET_WINDOW = 12              # ... measured against the lowest of this many earlier readings
DRY_WINDOW_H = 48.0          # drying slows as the soil dries: fit the recent part only


# --- input ----------------------------------------------------------------------------------------

def _clean(times, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted unique times, their values (duplicates averaged) and an original index for each."""
    t = np.asarray(times, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if t.shape != y.shape:
        raise ValueError(f"{t.size} times but {y.size} values")
    valid = np.flatnonzero(np.isfinite(t) & np.isfinite(y))
    order = valid[np.argsort(t[valid], kind="stable")]
    ts, ys = t[order], y[order]
    if ts.size > 1 and np.any(ts[1:] == ts[:-1]):
        starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
        counts = np.diff(np.r_[starts, ts.size])
        ys = np.add.reduceat(ys, starts) / counts
        ts, order = ts[starts], order[starts]
    return ts, ys, order


def _until(times, values, at: float) -> tuple[np.ndarray, np.ndarray]:
    """The clean series up to ``at`` (later readings are not known at ``at``)."""
    t, y, _ = _clean(times, values)
    keep = t <= at
    if not keep.any():
        raise ValueError("no readings at or before the forecast time")
    return t[keep], y[keep]


# --- local time -----------------------------------------------------------------------------------

@lru_cache(maxsize=8192)
def _day_offsets(tz: ZoneInfo, day: int) -> tuple[float, float, float]:
    """UTC offsets (s) at the start and end of UTC day ``day`` and the instant of a change.

    Cached per day: 500 bins over the same weeks ask for the same few dozen days."""
    from datetime import datetime, timezone

    def offset(s: float) -> float:
        return datetime.fromtimestamp(s, timezone.utc).astimezone(tz).utcoffset().total_seconds()

    lo, hi = day * DAY_S, (day + 1) * DAY_S
    before, after = offset(lo), offset(hi)
    if before == after:
        return before, after, math.inf
    while hi - lo > 1.0:  # bisect to the second of the change (DST: 01:00 UTC in the EU)
        mid = math.floor((lo + hi) / 2)
        if offset(mid) == before:
            lo = mid
        else:
            hi = mid
    return before, after, hi


@lru_cache(maxsize=256)
def _offset_table(tz: ZoneInfo, first_day: int, days: int) -> np.ndarray:
    """Rows (offset before, offset after, instant of change) for ``days`` UTC days from
    ``first_day``: one table serves every bin whose readings cover the same weeks."""
    return np.array([_day_offsets(tz, d) for d in range(first_day, first_day + days)]
                    ).reshape(-1, 3)


def _holiday_days(holidays: Iterable[date]) -> np.ndarray:
    """Public holidays as days since 1970-01-01 (local calendar days)."""
    return np.array(sorted({d.toordinal() - _EPOCH_ORDINAL for d in holidays}), dtype=np.int64)


def _week_hour(t: np.ndarray, tz: ZoneInfo, holidays: np.ndarray | None = None
               ) -> np.ndarray:
    """Local weekday * 24 + local hour (Monday 0 .. Sunday 23 = 167) of each time; a public
    holiday (days since 1970-01-01 in ``holidays``) counts as a Sunday: shops shut, people
    out walking, as on Sundays."""
    return _calendar(t, tz, holidays)[1]


def _calendar(t: np.ndarray, tz: ZoneInfo, holidays: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(local date as days since 1970-01-01, local week hour as in :func:`_week_hour`)."""
    days = np.floor(t / DAY_S).astype(np.int64)
    if days.size == 0:
        return days, days
    first = int(days.min())
    # whole weeks of table, so that a series growing by a reading reuses the cached one
    span = (int(days.max()) - first) // 7 * 7 + 7
    before, after, change = _offset_table(tz, first, span)[days - first].T
    local = t + np.where(t < change, before, after)
    local_day = np.floor(local / DAY_S)
    day = local_day.astype(np.int64)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    if holidays is not None and holidays.size:
        weekday = np.where(np.isin(day, holidays), 6, weekday)
    hour = ((local - local_day * DAY_S) // HOUR_S).astype(np.int64)
    return day, weekday * 24 + hour


# --- an activity clock: hours weighted by the weekday profile -------------------------------------

@dataclass(frozen=True)
class _Clock:
    """Profile-weighted hours elapsed since ``edges[0]`` at each hour boundary.

    With a profile, litter arrives at ``base rate x profile(hour)``, so the fill is a straight
    line in this clock; without one the clock is plain hours. Hours start at UTC hour
    boundaries (local hours too for whole-hour offsets)."""

    edges: np.ndarray | None  # hour boundaries, epoch s (None: plain hours)
    cumulative: np.ndarray | None

    @staticmethod
    def make(t0: float, t1: float, profile: np.ndarray | None, tz: ZoneInfo,
             holidays: np.ndarray | None = None) -> _Clock:
        if profile is None:
            return _Clock(None, None)
        first, last = math.floor(t0 / HOUR_S), math.ceil(t1 / HOUR_S)
        edges = np.arange(first, max(last, first + 1) + 1, dtype=float) * HOUR_S
        weights = profile.ravel()[_week_hour(edges[:-1], tz, holidays)]
        return _Clock(edges, np.concatenate(([0.0], np.cumsum(weights))))

    def hours(self, t):
        """Profile-hours at ``t`` (scalar or array)."""
        if self.edges is None:
            return np.asarray(t, dtype=float) / HOUR_S
        return np.interp(t, self.edges, self.cumulative)

    def time_at(self, hours: float) -> float | None:
        """The first time the clock shows ``hours``; None beyond the clock's end."""
        if self.edges is None:
            return hours * HOUR_S
        c = self.cumulative
        if hours > c[-1]:
            return None
        k = int(np.searchsorted(c, hours, side="left"))
        if k == 0:
            return float(self.edges[0])
        # c[k-1] < hours <= c[k], so the hour has weight: no division by zero
        return float(self.edges[k - 1] + (hours - c[k - 1]) / (c[k] - c[k - 1]) * HOUR_S)


def _crossing(clock: _Clock, at: float, level: float, rate: float, target: float,
              horizon_h: float, rising: bool) -> float | None:
    """When a line ``level + rate * clock`` from ``at`` reaches ``target`` (None: not within
    the horizon or never)."""
    if (level >= target) if rising else (level <= target):
        return at
    if not math.isfinite(rate) or (rate <= 0 if rising else rate >= 0):
        return None
    when = clock.time_at(float(clock.hours(at)) + (target - level) / rate)
    if when is None or when > at + horizon_h * HOUR_S:
        return None
    return when


# --- robust slopes --------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def _theil_sen(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the pairwise slopes of points at least min(24 h, half the span) apart: short
    pairs are mostly noise, and pairs a day apart see whole days (nan for < 2 points)."""
    if x.size > MAX_FIT_POINTS:
        keep = np.unique(np.linspace(0, x.size - 1, MAX_FIT_POINTS).round().astype(np.intp))
        x, y = x[keep], y[keep]
    span = float(x[-1] - x[0]) if x.size else 0.0
    if x.size < 2 or span <= 0:
        return math.nan
    i, j = _pairs(x.size)
    dx = x[j] - x[i]
    far = dx >= min(MAX_PAIR_LAG_H, 0.5 * span)
    return float(np.median((y[j][far] - y[i][far]) / dx[far]))


def _backtest_ratios(t: np.ndarray, x: np.ndarray, y: np.ndarray, cycle: np.ndarray,
                     window_h: float = math.inf) -> tuple[float, float]:
    """10 % and 90 % quantiles of (rate over the next day) / (rate before), from the history.

    At every reading at least 12 h into its cycle, the rate so far (from the cycle's start, or
    the last ``window_h``) is set against what the next 24 h brought, on the clock ``x``. So
    the band carries all this bin's forecast errors: busy and quiet days, weather, bags of
    household waste, a profile that is only learnt. Defaults when there are too few."""
    n = t.size
    if n < 2:
        return DEFAULT_DAY_RATIOS
    i = np.arange(n)
    first = np.r_[0, np.flatnonzero(cycle[1:] != cycle[:-1]) + 1]
    s = first[np.searchsorted(first, i, side="right") - 1]  # each reading's cycle start
    if math.isfinite(window_h):
        s = np.maximum(s, np.searchsorted(t, t - window_h * HOUR_S))
    j = np.minimum(np.searchsorted(t, t + DAY_S), n - 1)
    # both spans must hold some activity: a quiet Sunday on the profile clock is a few
    # minutes long, and the noise over it would pass for a wild rate
    ok = ((t - t[s] >= BACKTEST_MIN_AGE_H * HOUR_S) & (cycle[j] == cycle)
          & (t[j] - t >= DAY_S) & (t[j] - t <= DAY_S + PROFILE_MAX_GAP_H * HOUR_S)
          & (x[j] - x >= BACKTEST_MIN_AGE_H) & (x - x[s] >= BACKTEST_MIN_AGE_H))
    if ok.sum() < MIN_DAY_PAIRS:
        return DEFAULT_DAY_RATIOS
    i, j, s = i[ok], j[ok], s[ok]
    before = (y[i] - y[s]) / (x[i] - x[s])
    after = (y[j] - y[i]) / (x[j] - x[i])
    usable = before != 0
    if usable.sum() < MIN_DAY_PAIRS:
        return DEFAULT_DAY_RATIOS
    low, high = np.quantile(after[usable] / before[usable], (0.1, 0.9))
    return min(max(float(low), MIN_DAY_RATIO), 1.0), max(float(high), 1.0)


def _band(rate: float, ratios: tuple[float, float], widen: float = 1.0
          ) -> tuple[float, float]:
    """(low, high) 10-90 % rates for the time to come: ``rate`` times the backtest's ratios,
    their logarithms stretched by ``widen``."""
    if not math.isfinite(rate):
        return math.nan, math.nan
    low, high = (rate * math.exp(widen * math.log(r)) for r in ratios)
    return min(low, high), max(low, high)


def _median(values: list[float]) -> float:
    """Median of a handful of numbers (np.median costs 40 us a call, this 1)."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def _level_now(x: np.ndarray, y: np.ndarray, x_at: float, rate: float) -> float:
    """Median of the last three readings, each carried forward to ``x_at`` along the rate."""
    x, y = x[-3:], y[-3:]
    if math.isfinite(rate):
        y = y + rate * (x_at - x)
    return _median(y.tolist())


# --- bins: glitches and emptyings -----------------------------------------------------------------

def _displaced_runs(t: np.ndarray, z: np.ndarray, step: float, window_s: float,
                    back_to_pre: bool, lowest_allowed: float = -math.inf
                    ) -> list[tuple[int, int]]:
    """Runs [m, k) of readings raised above the reading before them, then left by a fall.

    The run is entered by a rise of at least ``step``, stays at least ``step`` above the level
    before it and at least ``lowest_allowed`` throughout, ends with a fall of at least ``step``
    and lasts at most ``window_s``; with ``back_to_pre`` the reading after it must be back
    within ``step`` of the level before. (Called on ``-y`` for runs that are too low.)"""
    runs: list[tuple[int, int]] = []
    ends = np.flatnonzero(z[:-1] - z[1:] >= step) + 1
    rises = np.flatnonzero(z[1:] - z[:-1] >= step) + 1
    # only a fall with a rise not long before can end a run (most falls are emptyings)
    window_start = np.searchsorted(t, t[ends] - window_s)
    ends = ends[np.searchsorted(rises, ends) > np.searchsorted(rises, window_start)]
    if ends.size == 0:
        return runs
    rise_into = np.r_[False, z[1:] - z[:-1] >= step].tolist()
    t, z = t.tolist(), z.tolist()  # the walk is scalar work: lists are faster than arrays
    for k in ends.tolist():
        # (runs may overlap: a glitch that wobbles by ``step`` ends twice; the caller unites)
        start, lowest, m = None, math.inf, k - 1
        while m > 0 and t[k] - t[m] <= window_s:
            lowest = min(lowest, z[m])
            if (rise_into[m] and lowest >= z[m - 1] + step and lowest >= lowest_allowed
                    and (not back_to_pre or abs(z[k] - z[m - 1]) <= step)):
                start = m  # keep walking back: the earliest rise that explains the run
            m -= 1
        if start is not None:
            runs.append((start, k))
    return runs


def _glitch_mask(t: np.ndarray, y: np.ndarray, jump: float) -> np.ndarray:
    """True for readings that are sensor glitches, not the bin's fill.

    * single readings far off both neighbours on the same side (a 0 or a 100 among 40s);
    * short runs (up to 2 h) near 0 and far below the level before and after them (the echo
      was lost); near 0 only, so that the true level between two "full" glitches is not
      taken for the glitch;
    * runs up to MAX_GLITCH_H long that rise by at least half of ``jump``, stay up, and fall
      again: a bag hanging in the lid reads about "full" for hours. Litter does not arrive in
      such steps and then vanish, so the run is not the fill whatever the level after it (if
      the bin was emptied meanwhile, the fall at the end is found as the emptying);
    * a rise of a whole ``jump`` in the last MAX_GLITCH_H that has stayed up: provisionally a
      glitch, until it has lasted longer than any glitch does.
    """
    n = y.size
    bad = np.zeros(n, dtype=bool)
    if n >= 3:
        up_prev, down_next = y[1:-1] - y[:-2], y[1:-1] - y[2:]
        bad[1:-1] = (((up_prev >= jump) & (down_next >= jump))
                     | ((up_prev <= -jump) & (down_next <= -jump)))
    half = 0.5 * jump
    for sign, window_h, back, allowed in ((-1.0, LOW_GLITCH_H, True, -LOW_GLITCH_MAX_PCT),
                                          (1.0, MAX_GLITCH_H, False, -math.inf)):
        good = np.flatnonzero(~bad)
        for m, k in _displaced_runs(t[good], sign * y[good], half, window_h * HOUR_S, back,
                                    allowed):
            bad[good[m:k]] = True
    good = np.flatnonzero(~bad)
    tg, yg = t[good], y[good]
    recent = tg >= tg[-1] - MAX_GLITCH_H * HOUR_S if tg.size else tg
    for m in (np.flatnonzero(np.diff(yg) >= jump) + 1).tolist():
        if recent[m] and yg[m:].min() >= yg[m - 1] + half:
            bad[good[m:]] = True
            break
    return bad


def _emptying_positions(t: np.ndarray, y: np.ndarray, bad: np.ndarray, min_drop: float
                        ) -> np.ndarray:
    """Positions (in the clean series) of the first reading after each emptying."""
    good = np.flatnonzero(~bad)
    yg = y[good]
    candidates = np.flatnonzero(np.diff(yg) <= -min_drop) + 1
    found: list[int] = []
    for i in candidates.tolist():
        if found and i - found[-1] < CONFIRM_READINGS:
            continue  # the tail of a drop already counted
        after = yg[i:i + CONFIRM_READINGS].tolist()
        if len(after) < MIN_CONFIRM_READINGS:
            continue  # one low reading at the end: an emptying or a glitch, not yet known
        start = found[-1] if found else 0
        before = yg[max(start, i - 3):i].tolist()
        # a real emptying persists: the next readings stay low, not only the first one
        if _median(before) - _median(after) >= min_drop:
            found.append(i)
    return good[np.asarray(found, dtype=np.intp)]


def detect_emptyings(times, levels_pct, *, min_drop_pct: float = 25.0) -> np.ndarray:
    """Indices ``i`` (into the given arrays) of the first reading after each emptying.

    For sorted input, the bin was emptied between reading ``i - 1`` and ``i``. An emptying is a
    drop of at least ``min_drop_pct`` points from the level before (median of up to three
    readings) to the level after (median of the next four readings, at least two of which must
    exist), so a single low reading, or the end of a run of "full" readings from a bag in the
    lid, is not one (see :func:`_glitch_mask`). Of readings sharing a time the first is named.
    """
    t, y, original = _clean(times, levels_pct)
    bad = _glitch_mask(t, y, min_drop_pct)
    return original[_emptying_positions(t, y, bad, min_drop_pct)]


# --- bins: weekday profile ------------------------------------------------------------------------

def _shrunk_means(values: np.ndarray, groups: np.ndarray, n_groups: int, prior: np.ndarray,
                  noise_var: float | None = None, fallback_n: float = 0.0) -> np.ndarray:
    """Group means of ``values`` shrunk toward ``prior`` by how much the data can tell.

    Empirical Bayes: the noise of one value is the spread of the values within their groups
    (or ``noise_var`` if the groups have too few values to show it); the true spread of the
    groups is what their means vary by beyond that noise. A group of n values keeps the share
    spread / (spread + noise / n) of its own deviation from the prior; a group without values
    is the prior. Without any noise to go by, a group keeps n / (n + ``fallback_n``)."""
    n = np.bincount(groups, minlength=n_groups)
    seen = n > 0
    mean = np.where(seen, np.bincount(groups, values, n_groups) / np.maximum(n, 1), prior)
    replicates = values.size - int(seen.sum())
    if replicates >= max(3, int(seen.sum()) // 2):  # enough repeated groups to see the noise
        noise_var = float(np.sum((values - mean[groups]) ** 2)) / replicates
    if noise_var is None or not seen.any():
        return prior + n / (n + fallback_n + 1e-12) * (mean - prior)
    spread = max(0.0, float(np.mean((mean[seen] - prior[seen]) ** 2))
                 - float(np.mean(noise_var / n[seen])))
    keep = np.where(seen, spread / (spread + noise_var / np.maximum(n, 1) + 1e-12), 0.0)
    return prior + keep * (mean - prior)


def fill_profile(times, levels_pct, emptyings, tz: ZoneInfo = BERLIN, *,
                 holidays: Iterable[date] = (), min_drop_pct: float = 25.0) -> np.ndarray:
    """Relative fill rate by local weekday (rows, Monday first) and hour (columns), mean 1.0.

    From the increments between consecutive good readings at most 2 h apart, within a cycle
    (``emptyings`` as returned by :func:`detect_emptyings` for the same arrays), each booked to
    the hour of its midpoint; readings of a full bin (>= 100 %) tell nothing and are left out.
    Signed increments are summed, so sensor noise cancels instead of piling up as spurious
    night-time fill; a cell that comes out negative counts as 0. Local dates in ``holidays``
    count as Sundays.

    Shrinkage. The weekday factors (from whole days) and the hour-of-day factors (from each
    hour of each day) are shrunk toward 1, a flat profile, by empirical Bayes
    (:func:`_shrunk_means`), so "little data" is judged by the data: a factor keeps its own
    deviation in the measure it stands out of the noise. A day's litter strays by a quarter
    or so on its own (busy days, weather), so a weekday seen once keeps only part of its
    deviation; a clean office-hours pattern keeps nearly all. Each cell is shrunk toward the
    product of its weekday and hour factors (litter follows "busy day x busy hour") with the
    weight of 4 h of data: four weeks of readings (4 h per cell) give a cell half its own say,
    one week a fifth. A cell with no data is its weekday x hour-of-day value (the hour's value,
    then 1, when those have no data either); no data at all gives a flat profile.
    """
    t, y, _ = _clean(times, levels_pct)
    flat = np.ones((7, 24))
    if t.size < 2:
        return flat
    good = np.flatnonzero(~_glitch_mask(t, y, min_drop_pct))
    emptied = np.asarray(emptyings, dtype=np.intp).ravel()
    if emptied.size:
        raw_t = np.asarray(times, dtype=float).ravel()
        positions = np.searchsorted(t, raw_t[emptied])
    else:
        positions = np.empty(0, dtype=np.intp)
    a, b = good[:-1], good[1:]
    dt_h = (t[b] - t[a]) / HOUR_S
    # an interval (a, b] that contains an emptying is not fill
    crosses = (np.searchsorted(positions, b, side="right")
               - np.searchsorted(positions, a, side="right")) > 0
    use = (~crosses) & (dt_h > 0) & (dt_h <= PROFILE_MAX_GAP_H) & (y[b] < SATURATED_PCT)
    if not use.any():
        return flat
    rise, hours = y[b][use] - y[a][use], dt_h[use]
    mean_rate = rise.sum() / hours.sum()
    if not mean_rate > 0:
        return flat
    day, cell = _calendar(0.5 * (t[a][use] + t[b][use]), tz, _holiday_days(holidays))
    # one value per hour of each day: its rate relative to the mean
    unit, inverse = np.unique((day - day.min()) * WEEK_HOURS + cell, return_inverse=True)
    unit_hours = np.bincount(inverse, hours)
    unit_rel = np.bincount(inverse, rise) / unit_hours / mean_rate
    unit_cell = unit % WEEK_HOURS
    covered = unit_hours >= 0.5
    unit_rel, unit_cell = unit_rel[covered], unit_cell[covered]
    # one value per day with most of its hours seen
    days, day_inverse = np.unique(unit[covered] // WEEK_HOURS, return_inverse=True)
    day_hours = np.bincount(day_inverse, unit_hours[covered])
    day_rel = np.bincount(day_inverse, unit_rel * unit_hours[covered]) / day_hours
    whole = day_hours >= 12.0
    day_weekday = (unit_cell // 24)[np.unique(day_inverse, return_index=True)[1]]

    weekday = _shrunk_means(day_rel[whole], day_weekday[whole], 7, np.ones(7),
                            DAY_SPREAD ** 2)
    hour = _shrunk_means(unit_rel, unit_cell % 24, 24, np.ones(24),
                         fallback_n=PROFILE_PRIOR_HOUR_N)
    # cells: a fixed weight, as a cell has too few values (one a week) to judge its noise
    rel = np.bincount(cell, rise, WEEK_HOURS).reshape(7, 24) / mean_rate  # relative hours
    seen = np.bincount(cell, hours, WEEK_HOURS).reshape(7, 24)
    prior = np.outer(weekday, hour)
    profile = np.clip((rel + PROFILE_PRIOR_CELL_H * prior) / (seen + PROFILE_PRIOR_CELL_H),
                      0.0, None)
    total = profile.mean()
    return profile / total if total > 0 else flat


# --- bins: forecast -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FillForecast:
    """When a bin reaches ``full_pct``; times are epoch seconds, levels percent.

    ``rate_pct_h`` is the mean fill rate (points per hour) over the current cycle (when that is
    too short, the earlier cycles' rate per average hour); with a profile, the projection runs
    at ``base_rate_pct_h`` per profile-hour (the rate of an average hour of the week), so a
    cycle that spanned a quiet weekend does not make the coming weekdays look quiet.
    ``rate_low/high`` are a 10-90 % band for the mean rate until full (never negative);
    ``full_early`` uses the high rate, ``full_late`` the low one. ``full_*`` are None when
    beyond the horizon or when the rate is unknown (nan, e.g. from a single reading).
    ``n_readings``: distinct valid readings at or before ``at`` the forecast saw.
    """

    at: float
    level_pct: float
    rate_pct_h: float
    rate_low_pct_h: float
    rate_high_pct_h: float
    last_emptied: float | None
    full_at: float | None
    full_early: float | None
    full_late: float | None
    n_readings: int
    full_pct: float = 100.0
    base_rate_pct_h: float = math.nan
    profile: np.ndarray | None = field(default=None, repr=False, compare=False)
    tz: ZoneInfo = field(default=BERLIN, repr=False, compare=False)
    holidays: np.ndarray | None = field(default=None, repr=False, compare=False)

    def level_at(self, t: float) -> float:
        """Expected level at ``t`` >= ``at`` (capped at 120 %; nan when the rate is unknown)."""
        if t < self.at:
            raise ValueError("level_at looks forward from the forecast time only")
        if not math.isfinite(self.base_rate_pct_h):
            return math.nan
        clock = _Clock.make(self.at, t, self.profile, self.tz, self.holidays)
        gained = self.base_rate_pct_h * float(clock.hours(t) - clock.hours(self.at))
        return min(LEVEL_CAP_PCT, self.level_pct + gained)


def _cycle_rate(t: np.ndarray, x: np.ndarray, y: np.ndarray, ceiling: float = math.inf
                ) -> float | None:
    """Rate per clock hour of one cycle (readings below ``ceiling``), None if too short."""
    below = y < ceiling
    if not below.all():
        t, x, y = t[below], x[below], y[below]
    if t.size < MIN_CYCLE_POINTS or t[-1] - t[0] < MIN_CYCLE_H * HOUR_S:
        return None
    return _theil_sen(x, y)


def _history_rate(t, x, y, starts: list[int]) -> float | None:
    """Median rate of the last earlier cycles (between two emptyings) that tell one."""
    rates = []
    for a, b in list(zip(starts[:-1], starts[1:]))[-HISTORY_CYCLES:]:
        rate = _cycle_rate(t[a:b], x[a:b], y[a:b], SATURATED_PCT)
        if rate is not None and math.isfinite(rate):
            rates.append(rate)
    return _median(rates) if rates else None


def forecast_fill(times, levels_pct, at: float, *, full_pct: float = 100.0,
                  profile: np.ndarray | None = None, tz: ZoneInfo = BERLIN,
                  holidays: Iterable[date] = (), horizon_h: float = 14 * 24,
                  min_drop_pct: float = 25.0) -> FillForecast:
    """Fill rate of the current cycle and when the bin reaches ``full_pct``.

    Only readings at or before ``at`` count. The cycle starts at the last emptying
    (:func:`detect_emptyings`); glitches are left out. The rate is the Theil-Sen slope of the
    cycle's readings against the profile clock (plain hours without a profile); a cycle shorter
    than 6 h or with fewer than 4 good readings takes the median rate of the earlier cycles.
    The level at ``at`` is the median of the last three readings carried forward along the
    rate. The band: the 10 % and 90 % ratios of "next day's rate / rate so far" over this bin's
    history (:func:`_backtest_ratios`), widened (BAND_WIDEN, more when full is less than a day
    away). Readings at or above 100 % say nothing about the rate and are left out of it.
    Local dates in ``holidays`` follow the profile's Sunday (pass the same as to
    :func:`fill_profile`). Already at or above ``full_pct``: ``full_at``, ``full_early`` and
    ``full_late`` are ``at``.

    With a single reading the rate is unknown: ``rate_pct_h`` is nan and ``full_at`` None
    (unless that reading is already full). No readings: ValueError.
    """
    t, y = _until(times, levels_pct, at)
    if profile is not None:
        profile = np.asarray(profile, dtype=float).reshape(7, 24)
    bad = _glitch_mask(t, y, min_drop_pct)
    emptied = _emptying_positions(t, y, bad, min_drop_pct)
    holiday_days = _holiday_days(holidays)  # local dates that follow the Sunday profile
    clock = _Clock.make(t[0], at + horizon_h * HOUR_S, profile, tz, holiday_days)
    good = ~bad
    rank = np.cumsum(good) - 1  # position among the good readings (emptyings are good ones)
    tg, yg = t[good], y[good]
    if tg.size == 0:  # nothing but a provisional glitch: take the readings as they are
        tg, yg, rank = t, y, np.arange(t.size)
    xg = clock.hours(tg)
    starts = [0] + rank[emptied].tolist()
    start = starts[-1]
    x_at = float(clock.hours(at))

    base = _cycle_rate(tg[start:], xg[start:], yg[start:], SATURATED_PCT)
    from_history = base is None
    if from_history:
        base = _history_rate(tg, xg, yg, starts + [start])
        if base is None and tg.size - start >= 2:  # no history: whatever this cycle says
            base, from_history = _theil_sen(xg[start:], yg[start:]), False
    base = math.nan if base is None else base
    base = max(0.0, base) if math.isfinite(base) else base  # litter does not leave by itself

    level = _level_now(xg[start:], yg[start:], x_at, base)
    full_at = _crossing(clock, at, level, base, full_pct, horizon_h, True)
    future_h = (float(clock.hours(full_at)) - x_at if full_at is not None
                else float(clock.hours(at + horizon_h * HOUR_S)) - x_at)
    cycle = np.searchsorted(np.asarray(starts), np.arange(tg.size), side="right")
    fresh = yg < SATURATED_PCT
    # the backtest speaks for a day ahead; less time to go leaves less time to average out
    widen = BAND_WIDEN * math.sqrt(max(1.0, 24.0 / max(future_h, 24.0 / MAX_SHORT_WIDEN**2)))
    low, high = _band(base, _backtest_ratios(tg[fresh], xg[fresh], yg[fresh], cycle[fresh]),
                      widen)
    # the mean rate in plain hours over this cycle (what the profile clock ran at meanwhile)
    elapsed_h = (at - tg[start]) / HOUR_S
    scale = (x_at - xg[start]) / elapsed_h if elapsed_h > 0 and not from_history else 1.0
    return FillForecast(
        at=float(at), level_pct=level, rate_pct_h=base * scale, rate_low_pct_h=low * scale,
        rate_high_pct_h=high * scale,
        last_emptied=float(tg[start]) if emptied.size else None,
        full_at=full_at,
        full_early=_crossing(clock, at, level, high, full_pct, horizon_h, True),
        full_late=_crossing(clock, at, level, low, full_pct, horizon_h, True),
        n_readings=int(t.size), full_pct=float(full_pct), base_rate_pct_h=base,
        profile=profile, tz=tz, holidays=holiday_days)


# --- soil -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DryForecast:
    """When the soil moisture falls to ``dry_pct``; times epoch seconds, moisture % VWC.

    ``rate_pct_h`` is the drying rate (negative, points per hour) over the recent part of the
    current drying spell; ``rate_low_pct_h`` <= ``rate_pct_h`` <= ``rate_high_pct_h`` <= 0 is
    its 10-90 % band (low = fastest drying). ``dry_early`` uses the low rate, ``dry_late`` the
    high one; ``dry_*`` are None beyond the horizon or when the soil is not drying (or the rate
    is unknown: nan from a single reading). ``last_wetted`` is the first reading of the last
    rise of at least 1.5 points (rain or watering), None if there was none.
    """

    at: float
    level_pct: float
    rate_pct_h: float
    rate_low_pct_h: float
    rate_high_pct_h: float
    last_wetted: float | None
    dry_at: float | None
    dry_early: float | None
    dry_late: float | None
    n_readings: int
    dry_pct: float = math.nan

    def level_at(self, t: float) -> float:
        """Expected moisture at ``t`` >= ``at`` along the drying rate (not below 0; nan when
        the rate is unknown)."""
        if t < self.at:
            raise ValueError("level_at looks forward from the forecast time only")
        if not math.isfinite(self.rate_pct_h):
            return math.nan
        return max(0.0, self.level_pct + self.rate_pct_h * (t - self.at) / HOUR_S)


def _rolling_median(y: np.ndarray, width: int) -> np.ndarray:
    if y.size < width:
        return y.copy()
    half = width // 2
    padded = np.concatenate((np.repeat(y[0], half), y, np.repeat(y[-1], half)))
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def _rises(s: np.ndarray, window: int) -> list[tuple[int, int]]:
    """(first reading that shows the water, reading where the rise reaches WET_RISE_PCT) of
    the rises of ``s`` above the lowest of the ``window`` readings before.

    The water shows from the first of the readings, running up to the latter, that are all
    above half the rise so far: a step (a watering) at the step, a long rain at its middle."""
    w = min(window, s.size - 1)
    before = np.lib.stride_tricks.sliding_window_view(
        np.concatenate((np.repeat(s[0], w - 1), s)), w)[:-1]  # row k-1: the w readings before k
    lowest = before.min(axis=1)
    rising = np.r_[False, s[1:] - lowest >= WET_RISE_PCT]
    out = []
    for k in np.flatnonzero(rising & ~np.r_[False, rising[:-1]]).tolist():
        low = max(0, k - w + int(np.argmin(before[k - 1])))
        half = 0.5 * (lowest[k - 1] + s[k])
        shows = k
        while shows - 1 > low and s[shows - 1] >= half:
            shows -= 1
        out.append((shows, k))
    return out


def _wettings(y: np.ndarray) -> list[tuple[int, int]]:
    """(first reading that shows the water, peak after it) of each wetting, in order.

    A wetting is a rise of the smoothed moisture (median of 5: the probe's noise is ~0.4
    points) of at least WET_RISE_PCT above the lowest of the 12 readings before (slow rain),
    or of the 3 before (a watering while the soil is still wet from rain, which the 12-reading
    test sees as the same rise)."""
    s = _rolling_median(y, 5)
    if s.size < 2:
        return []
    events: list[tuple[int, int]] = []
    for shows, k in sorted(_rises(s, WET_WINDOW) + _rises(s, 3)):
        peak = k + int(np.argmax(s[k:k + WET_WINDOW + 1]))
        if events and shows <= events[-1][0] + 2:  # the same rise seen twice: one wetting
            events[-1] = (events[-1][0], max(peak, events[-1][1]))
        else:
            events.append((shows, peak))
    return events


def _spell_rate(t: np.ndarray, y: np.ndarray, a: int, b: int) -> float | None:
    """Drying rate over the last DRY_WINDOW_H of the readings [a, b); None if too short."""
    if b - a < 1:
        return None
    recent = max(a, int(np.searchsorted(t, t[b - 1] - DRY_WINDOW_H * HOUR_S)))
    return _cycle_rate(t[recent:b], t[recent:b] / HOUR_S, y[recent:b])


def forecast_dry(times, moisture_pct, at: float, *, dry_pct: float,
                 horizon_h: float = 14 * 24) -> DryForecast:
    """Drying rate since the last wetting and when the soil reaches ``dry_pct``.

    Only readings at or before ``at`` count. The drying spell starts at the peak after the last
    wetting (a rise of >= 1.5 points); the rate is the Theil-Sen slope of its last 48 h
    (drying slows as the soil dries, so older readings would overstate it). A spell shorter
    than 6 h or with fewer than 4 readings takes the latest earlier spell's rate. The band: the
    10 % and 90 % ratios of "next day's drying / drying over the 48 h before" in the history
    (sunny and grey days), as for bins. Already at or below ``dry_pct``: ``dry_at``,
    ``dry_early`` and ``dry_late`` are ``at``. One reading: the rate is nan and ``dry_at`` None
    (unless already dry). No readings: ValueError.
    """
    t, y = _until(times, moisture_pct, at)
    hours = t / HOUR_S
    events = _wettings(y)
    start = events[-1][1] if events else 0
    rate = _spell_rate(t, y, start, t.size)
    spells = [0] + [peak for _, peak in events]
    for n in range(len(events) - 1, -1, -1):
        if rate is not None:
            break
        # too fresh: the latest spell before that tells, up to the rise that ended it
        rate = _spell_rate(t, y, spells[n], events[n][0])
    if rate is None:
        rate = _theil_sen(hours[start:], y[start:])  # whatever there is (nan from one reading)
    rate = min(0.0, rate) if math.isfinite(rate) else rate  # soil does not wet itself

    clock = _Clock(None, None)
    level = _level_now(hours[start:], y[start:], at / HOUR_S, rate)
    spell = np.searchsorted(np.asarray(spells), np.arange(t.size), side="right")
    low, high = _band(rate, _backtest_ratios(t, hours, y, spell, DRY_WINDOW_H),
                      SOIL_BAND_WIDEN)
    high = min(0.0, high) if math.isfinite(high) else high
    return DryForecast(
        at=float(at), level_pct=level, rate_pct_h=rate, rate_low_pct_h=low,
        rate_high_pct_h=high,
        last_wetted=float(t[events[-1][0]]) if events else None,
        dry_at=_crossing(clock, at, level, rate, dry_pct, horizon_h, False),
        dry_early=_crossing(clock, at, level, low, dry_pct, horizon_h, False),
        dry_late=_crossing(clock, at, level, high, dry_pct, horizon_h, False),
        n_readings=int(t.size), dry_pct=float(dry_pct))


__all__ = ["BERLIN", "DryForecast", "FillForecast", "detect_emptyings", "fill_profile",
           "forecast_dry", "forecast_fill"]
