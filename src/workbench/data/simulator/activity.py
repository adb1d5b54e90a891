"""``active`` events: a renewal process from signup while the user is alive.

The gaps between a user's sessions are gamma distributed with mean
1/rate and shape ``activity_gap_shape``: shape 1 is a Poisson process; a
larger shape makes use more habitual (regular), so a living user is rarely
silent for long -- which is what lets the inactivity rule tell silent
churners from living users.
"""

from __future__ import annotations

import numpy as np


def renewal_times(rng: np.random.Generator, rate: np.ndarray, span: np.ndarray, shape: float):
    """Event times of a gamma renewal process per user on (0, span).

    ``rate`` (events per day) and ``span`` (days) are per user. Returns
    ``(owner, t)``: the user index and time (days after signup) of every
    event, users in order, each user's times increasing. Gaps are drawn a
    batch per user (a little more than the expected count); users whose batch
    ended before their span get another batch, until every span is covered.
    """
    todo = np.flatnonzero((rate > 0) & (span > 0))
    offset = np.zeros(rate.size)
    owners, times = [], []
    while todo.size:
        expected = rate[todo] * (span[todo] - offset[todo])
        m = np.ceil(expected + 2.0 * np.sqrt(expected / shape + 1.0) + 1.0).astype(np.int64)
        owner = np.repeat(todo, m)
        gaps = rng.standard_gamma(shape, owner.size)
        gaps /= shape * rate[owner]
        # one cumulative sum that restarts at each user's offset: the first gap of each
        # user's batch also carries the user's offset minus the running total before it
        last = np.cumsum(m) - 1
        first = last - m + 1
        total = np.cumsum(gaps)
        before = np.diff(total[last], prepend=0.0) + offset[todo]  # each batch's own total, offset included
        gaps[first[1:]] -= before[:-1]
        gaps[first] += offset[todo]
        t = np.cumsum(gaps, out=total)
        keep = t < span[owner]
        owners.append(owner[keep])
        times.append(t[keep])
        end = t[last]
        more = end < span[todo]
        offset[todo[more]] = end[more]
        todo = todo[more]
    if not owners:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(owners), np.concatenate(times)
