"""Mean and t-interval over seeds against scipy's own interval; Welch's difference interval against the
Welch-Satterthwaite formula; regression against numpy."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from pipeline.io.atomic import write_json_atomic
from pipeline.metrics.stats import diff_ci, mean_ci, regression


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


def test_a_metrics_file_without_an_interval_is_standard_json(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"variant": [mean_ci([0.7]), {"x": float("inf")}]})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert loaded["variant"][0]["lo"] is None and loaded["variant"][0]["mean"] == 0.7 and loaded["variant"][1]["x"] is None


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


def test_diff_ci_is_welchs_interval():
    a, b = [0.62, 0.58, 0.66], [0.30, 0.41]
    out = diff_ci(a, b, 0.95)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    d = np.mean(a) - np.mean(b)
    assert out["diff"] == pytest.approx(d)
    assert (out["lo"], out["hi"]) == (pytest.approx(d - half), pytest.approx(d + half))
    assert out["separated"] is bool(d - half > 0)
    close = diff_ci([0.50, 0.60], [0.52, 0.58])
    assert close["lo"] < 0 < close["hi"] and not close["separated"]
    assert math.isnan(diff_ci([0.5], [0.4, 0.6])["lo"]) and not diff_ci([0.5], [0.4, 0.6])["separated"]


def test_comparisons_and_the_plain_sentence():
    from pipeline.detection.evaluation import comparisons
    from pipeline.detection.report import comparison_table, separated_sentence

    f1 = {"S": [0.30, 0.32, 0.31], "R": [0.60, 0.62, 0.61], "C": [0.29, 0.35, 0.41],
          "R+C": [0.55, 0.65, 0.62], "S>R": [0.70, 0.71, 0.72]}
    f1["C>R"] = [0.5, 0.55, 0.6]  # R_train in the fine-tune phase only: not a set without R_train
    runs = {f"{s}-{seed}": {"test_f1": v[seed]} for s, v in f1.items() for seed in range(3)}
    comps = comparisons(runs, list(f1), [0, 1, 2], 0.95, ["C"])
    assert [(c["a"], c["b"]) for c in comps] == [("S", "R"), ("C", "R"), ("R+C", "R"), ("S>R", "R"),
                                                  ("C>R", "R"), ("C", "S")]
    by = {(c["a"], c["b"]): c for c in comps}
    assert by[("S", "R")]["separated"] and by[("S>R", "R")]["separated"]
    assert not by[("R+C", "R")]["separated"] and not by[("C", "S")]["separated"]
    text = separated_sentence({"comparisons": comps})
    assert "`S>R` vs `R` (higher)" in text and "`S` vs `R` (lower)" in text
    assert "Not separated" in text and "`C` vs `S`" in text.split("Not separated")[1]
    assert comparison_table({"comparisons": comps}).count("\n") == len(comps) + 1


def test_over_seeds_merges_each_variants_runs_leaf_by_leaf():
    from pipeline.metrics.stats import fmt_ci, over_seeds
    from pipeline.train.gan_outputs import seed_runs

    runs = seed_runs(["a", "b"], [0, 1, 2])
    assert list(runs) == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"] and runs["b-1"] == ("b", 1)
    per_run = {name: {"acc": 0.5 + 0.1 * seed, "deep": {"x": float(seed)}, "flag": seed == 1, "label": "k"}
               for name, (variant, seed) in runs.items()}
    del per_run["b-2"]  # a run that did not finish is left out, not counted as 0
    out = over_seeds(per_run, runs, level=0.95)
    a = out["a"]
    assert a["seeds"] == [0, 1, 2] and out["b"]["seeds"] == [0, 1]
    assert a["acc"]["mean"] == pytest.approx(0.6) and a["acc"]["n"] == 3
    half = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)  # std of 0.5, 0.6, 0.7 is 0.1
    assert a["acc"]["hi"] - a["acc"]["mean"] == pytest.approx(half)
    assert a["deep"]["x"]["mean"] == pytest.approx(1.0)
    assert a["flag"] == {"mean": pytest.approx(1 / 3), "any": True, "n": 3}
    assert a["label"] == "k"
    assert fmt_ci(a["acc"]) == f"0.600 ± {half:.3f}"
    assert fmt_ci(out["b"]["acc"]).startswith("0.550 ± ")
    assert fmt_ci(over_seeds({"c-0": {"acc": 0.4}}, {"c-0": ("c", 0)})["c"]["acc"]) == "0.400"  # one seed: no interval
    assert fmt_ci(None) == "–" and fmt_ci(0.25) == "0.250"
