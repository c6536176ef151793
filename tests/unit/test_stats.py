"""Mean and t-interval over seeds against scipy's own interval; regression against numpy."""

import math

import numpy as np
import pytest
from scipy import stats

from pipeline.metrics.stats import mean_ci, regression


@pytest.mark.parametrize("values, level", [([0.882, 0.859], 0.95), ([0.5, 0.6, 0.55, 0.52], 0.9),
                                           ([0.1, 0.3, 0.2], 0.99)])
def test_mean_ci_matches_scipy_t_interval(values, level):
    out = mean_ci(values, level)
    lo, hi = stats.t.interval(level, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert out["mean"] == pytest.approx(np.mean(values))
    assert (out["lo"], out["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert out["n"] == len(values) and out["std"] == pytest.approx(np.std(values, ddof=1))


def test_single_run_has_no_interval():
    out = mean_ci([0.7])
    assert out["mean"] == 0.7 and out["n"] == 1 and math.isnan(out["lo"]) and math.isnan(out["hi"])
    assert mean_ci([])["n"] == 0
    assert mean_ci([0.4, float("nan"), 0.6])["n"] == 2


def test_regression_recovers_a_line():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    y = 0.9 - 0.05 * x + np.array([0.01, -0.01, 0.005, -0.002])
    out = regression(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert out["slope"] == pytest.approx(slope) and out["intercept"] == pytest.approx(intercept)
    assert out["r"] == pytest.approx(np.corrcoef(x, y)[0, 1]) and out["r"] < -0.99 and out["n"] == 4
    assert math.isnan(regression([1.0], [2.0])["slope"])
    assert math.isnan(regression([1.0, 2.0], [2.0, 3.0])["p"])  # two points: a line, no p-value


def test_report_says_when_intervals_overlap():
    from pipeline.detection.report import separation

    a = mean_ci([0.80, 0.82, 0.81])
    b = mean_ci([0.50, 0.52, 0.51])
    c = mean_ci([0.79, 0.83, 0.80])
    assert "clears" in separation([("x", "x", a), ("y", "y", b)])
    assert "do not separate" in separation([("x", "x", a), ("y", "y", b), ("z", "z", c)])
    single = {k: (None if k in ("lo", "hi") else v) for k, v in mean_ci([0.9]).items()}
    assert "not evidence" in separation([("x", "x", single), ("y", "y", b)])
