"""Summaries over repeated runs and small regressions, via scipy.stats."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np


def _runs(values: Sequence[float]) -> np.ndarray:
    """The values of the runs that produced a number (None and NaN dropped), as float64."""
    return np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean, sample std and the two-sided Student-t interval at ``level`` over independent runs.

    With one run there is no interval: ``lo``/``hi`` are NaN (a single run is not evidence).
    """
    from scipy import stats  # scipy.stats costs ~1 s to import: only when summarising
    x = _runs(values)
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "std": math.nan, "lo": math.nan, "hi": math.nan, "n": 1}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, df=n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "lo": mean - half, "hi": mean + half, "n": n}


def diff_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean of ``a`` minus mean of ``b`` with Welch's two-sided t-interval at ``level`` (scipy's
    ``ttest_ind(equal_var=False)``) and its p-value; ``separated`` when the interval excludes 0.
    Fewer than 2 runs on either side (or no spread at all): no interval."""
    from scipy import stats  # scipy.stats costs ~1 s to import: only when summarising
    x, y = _runs(a), _runs(b)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    if len(x) < 2 or len(y) < 2 or (x.std() == 0 and y.std() == 0):
        return {"diff": diff, "lo": math.nan, "hi": math.nan, "p": math.nan, "separated": False}
    res = stats.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(level)
    lo, hi = float(ci.low), float(ci.high)
    return {"diff": diff, "lo": lo, "hi": hi, "p": float(res.pvalue), "separated": bool(lo > 0 or hi < 0)}


def regression(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares line y = slope * x + intercept with Pearson r and its two-sided p (NaN below 3 points)."""
    from scipy import stats  # scipy.stats costs ~1 s to import: only when summarising
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": math.nan, "intercept": math.nan, "r": math.nan, "p": math.nan, "n": len(x)}
    res = stats.linregress(x, y)
    p = float(res.pvalue) if len(x) >= 3 else math.nan
    return {"slope": float(res.slope), "intercept": float(res.intercept), "r": float(res.rvalue), "p": p,
            "n": len(x)}


def over_seeds(per_run: Mapping[str, Any], runs: Mapping[str, tuple[str, int]], level: float = 0.95
               ) -> dict[str, Any]:
    """Per variant, the runs' metric trees merged leaf by leaf into ``mean_ci`` dicts (plus ``seeds``).

    ``per_run`` maps a run name (``<variant>-<seed>``) to its metrics tree; ``runs`` maps it to (variant,
    seed), as ``pipeline.train.gan_outputs.seed_runs`` gives. A numeric leaf becomes {"mean", "std", "lo",
    "hi", "n"} over the variant's seeds; booleans become the share of seeds where they hold (``mean``) and
    ``any``; other leaves (strings, lists) keep the first seed's value. A leaf missing in some seeds is
    summarised over the seeds that have it.
    """
    grouped: dict[str, list[tuple[int, Any]]] = {}
    for name, (variant, seed) in runs.items():
        if name in per_run:
            grouped.setdefault(variant, []).append((seed, per_run[name]))

    def merge(trees: list[Any]) -> Any:
        present = [t for t in trees if t is not None]
        if not present:
            return None
        first = present[0]
        if isinstance(first, Mapping):
            keys = list(dict.fromkeys(k for t in present if isinstance(t, Mapping) for k in t))
            return {k: merge([t.get(k) for t in present if isinstance(t, Mapping)]) for k in keys}
        if isinstance(first, bool):
            flags = [bool(t) for t in present]
            return {"mean": sum(flags) / len(flags), "any": any(flags), "n": len(flags)}
        if isinstance(first, (int, float)):
            return mean_ci([float(t) for t in present if isinstance(t, (int, float))], level)
        return first

    return {v: {"seeds": [s for s, _ in items], **merge([t for _, t in items])} for v, items in grouped.items()}


def fmt_ci(leaf: Any, digits: int = 3) -> str:
    """A summary leaf of ``over_seeds`` as text: ``mean ± half-width`` (t-interval), ``mean`` alone for one
    seed, ``–`` for nothing; a plain number is formatted as it is."""
    if leaf is None:
        return "–"
    if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
        return "–" if math.isnan(leaf) else f"{leaf:.{digits}f}"
    mean = leaf.get("mean", math.nan)
    if mean is None or math.isnan(mean):
        return "–"
    lo, hi = leaf.get("lo", math.nan), leaf.get("hi", math.nan)
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"
