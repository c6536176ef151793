"""The refiner comparison report: Markdown tables (after seed Tables 4.1-4.6) and matplotlib figures.

Inputs are the ``evaluate`` stage's summary (a dict), the crop features it saved, and per-detector
validation histories and test predictions. Nothing here computes a metric; it only arranges them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipeline.detection.params import REAL, SYNTHETIC, parse_phases
from pipeline.io.images import load_rgb
from pipeline.detection.predictions import read_predictions
from pipeline.detection.plots import draw_detections
from pipeline.viz import pyplot

Summary = dict[str, Any]


def fmt(v: Any, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def ci_cell(d: dict[str, Any], digits: int = 3) -> str:
    """'0.812 [0.790, 0.834]', or '0.812 (n=1, no CI)'."""
    if d.get("lo") is None:
        return f"{fmt(d.get('mean'), digits)} (n={d.get('n', 0)}, no CI)"
    return f"{fmt(d['mean'], digits)} [{fmt(d['lo'], digits)}, {fmt(d['hi'], digits)}]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def sets_table(s: Summary) -> str:
    """Test metrics per training set, mean [CI] over seeds (seed Tables 4.2-4.5)."""
    rows = [[f"`{name}`", fmt(d["train_images"]["mean"], 0), ci_cell(d["test_f1"]), fmt(d["test_precision"]["mean"]),
             fmt(d["test_recall"]["mean"]), ci_cell(d["test_ap50"]), fmt(d["test_map"]["mean"]),
             fmt(d["val_f1"]["mean"])] for name, d in s["sets"].items()]
    return table(["training set", "images", "test F1", "P", "R", "AP50", "mAP@[.5:.95]", "val F1"], rows)


def ranking(s: Summary, refiners: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(config, set, F1 summary) for every refiner's S+ and R+S+ set, best mean test F1 first."""
    rows = [(c, name, s["sets"][name]["test_f1"]) for c in refiners for name in (c, f"{REAL}+{c}")
            if name in s["sets"]]
    return sorted(rows, key=lambda r: -(r[2]["mean"] if r[2]["mean"] is not None else -1.0))


def separation(ranked: Sequence[tuple[str, str, dict[str, Any]]]) -> str:
    """Whether the best set's interval clears every other ranked set's interval (otherwise the ranking
    is not evidence)."""
    if len(ranked) < 2:
        return ""
    best = ranked[0][2]
    if best.get("lo") is None:
        return "Single runs have no interval; the ranking is not evidence."
    if any(r[2].get("hi") is None or best["lo"] <= r[2]["hi"] for r in ranked[1:]):
        return ("The best interval overlaps another's: these runs do not separate the refiner configs "
                "(more seeds, more data or longer training would be needed).")
    return "The best interval clears every other refined set's interval."


def ranking_table(s: Summary, refiners: Sequence[str]) -> str:
    rows = [[str(i), f"`{c}`", f"`{name}`", ci_cell(f1)] for i, (c, name, f1) in enumerate(ranking(s, refiners), 1)]
    baselines = [[ "–", "(baseline)", f"`{b}`", ci_cell(s["sets"][b]["test_f1"])]
                 for b in (SYNTHETIC, REAL, f"{REAL}+{SYNTHETIC}") if b in s["sets"]]
    return table(["rank", "refiner", "training set", "test F1 mean [CI]"], rows + baselines)


def comparison_table(s: Summary) -> str:
    """Each difference the evaluate stage tested: mean difference, Welch interval, p, separated or not."""
    rows = [[f"`{c['a']}` − `{c['b']}`", fmt(c["diff"]), f"[{fmt(c['lo'])}, {fmt(c['hi'])}]", fmt(c["p"], 3),
             "yes" if c["separated"] else "no"] for c in s.get("comparisons", [])]
    return table(["difference in mean test F1", "value", "interval", "p", "separated"], rows)


def separated_sentence(s: Summary) -> str:
    """Plainly: which differences the intervals separate and which they don't."""
    comps = s.get("comparisons", [])
    if not comps:
        return ""
    name = lambda c: f"`{c['a']}` vs `{c['b']}`"  # noqa: E731
    yes = [f"{name(c)} ({'higher' if c['diff'] > 0 else 'lower'})" for c in comps if c["separated"]]
    no = [name(c) for c in comps if not c["separated"]]
    return (f"Separated by these runs: {', '.join(yes) if yes else 'none'}. "
            f"Not separated (the interval contains 0, so the sign of the difference is not established): "
            f"{', '.join(no) if no else 'none'}.")


def distance_table(s: Summary) -> str:
    """Distances of every crop set to cR_train and to cS with sample sizes (seed Table 4.1)."""
    space, inc = s["feature_space"], s["inception"]
    cols = [f"fd_{space}", f"kid_{space}"] + (["fid", "kid"] if inc else [])
    header = ["crop set"] + [f"{c} to {ref}" for ref in ("R", "S") for c in cols] + ["n (set, R, S)"]
    rows = []
    for name, d in s["distances"].items():
        cells = [f"`c{name}`"]
        for ref in ("R", "S"):
            cells += [fmt(d[ref][c], 4) if ref in d else "–" for c in cols]
        n_r = d["R"]["n_b"] if "R" in d else "–"
        n_s = d["S"]["n_b"] if "S" in d else "–"
        cells.append(f"{next(iter(d.values()))['n_a']}, {n_r}, {n_s}")
        rows.append(cells)
    return table(header, rows)


def preservation_table(s: Summary) -> str:
    rows = [[f"`{name}`", ci_cell(d["recall"]), ci_cell(d["drop"]) if "drop" in d else "(reference)"]
            for name, d in s["label_preservation"].items()]
    return table(["images", "recall of the R_train detector", "drop vs S"], rows)


def mix_series(s: Summary, refiners: Sequence[str]) -> dict[str, list[tuple[float, str, dict[str, Any]]]]:
    """Per refiner: (k, set, F1) for R (k=0) and every R+[k x]<config> set, k = |added| / |R_train| (Fig. 4.7)."""
    if REAL not in s["sets"]:
        return {}
    n_real = s["sets"][REAL]["train_images"]["mean"]
    series: dict[str, list] = {}
    for name, d in s["sets"].items():
        phases = parse_phases(name, refiners)
        parts = phases[0]
        if len(phases) == 1 and len(parts) == 2 and parts[0].source == REAL:
            k = (d["train_images"]["mean"] - n_real) / n_real
            series.setdefault(parts[1].source, []).append((k, name, d["test_f1"]))
    for c in series:
        series[c] = sorted(series[c] + [(0.0, REAL, s["sets"][REAL]["test_f1"])], key=lambda r: r[0])
    return series


def mix_table(s: Summary, refiners: Sequence[str]) -> str:
    rows = [[f"`{c}`", fmt(k, 2), f"`{name}`", ci_cell(f1)] for c, pts in mix_series(s, refiners).items()
            for k, name, f1 in pts]
    return table(["added set", "k (added images per R_train image)", "training set", "test F1 mean [CI]"], rows)


# ---------------------------------------------------------------- figures
def _errorbar(ax, xs, summaries, **kw) -> None:
    means = np.array([d["mean"] if d["mean"] is not None else np.nan for d in summaries], dtype=float)
    lo = np.array([d["lo"] if d.get("lo") is not None else m for d, m in zip(summaries, means)], dtype=float)
    hi = np.array([d["hi"] if d.get("hi") is not None else m for d, m in zip(summaries, means)], dtype=float)
    ax.errorbar(xs, means, yerr=[means - lo, hi - means], capsize=4, marker="o", **kw)


def _save(fig, path: Path) -> None:
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_f1_bars(s: Summary, path: Path) -> None:
    plt = pyplot()
    names = list(s["sets"])
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names)), 3.6))
    _errorbar(ax, np.arange(len(names)), [s["sets"][n]["test_f1"] for n in names], linestyle="none")
    ax.set_xticks(np.arange(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(f"test F1 (mean, {int(100 * s['ci'])}% CI over {len(s['seeds'])} seeds)")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_pca(features: dict[str, np.ndarray], path: Path, max_points: int, seed: int = 0) -> None:
    """2-D PCA of crop features (fit on all sets together), one colour per set (seed Fig. 4.10)."""
    from sklearn.decomposition import PCA  # sklearn costs ~1-2 s to import: only for this figure
    plt = pyplot()
    rng = np.random.default_rng(seed)
    picked = {k: v[rng.permutation(len(v))[:max_points]] for k, v in features.items()}
    pca = PCA(n_components=2, random_state=seed).fit(np.concatenate(list(picked.values())))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, f in picked.items():
        xy = pca.transform(f)
        ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.6, label=f"c{name} (n={len(f)})")
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f}%)")
    ax.set_ylabel(f"PC2 ({100 * ev[1]:.0f}%)")
    ax.legend(fontsize=7)
    ax.set_title("crop features (R_train detector), PCA")
    _save(fig, path)


def plot_f1_vs_distance(s: Summary, path: Path) -> None:
    plt = pyplot()
    r = s["f1_vs_distance"]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(r["x"], r["y"])
    for x, y, name in zip(r["x"], r["y"], r["sets"]):
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if r["slope"] is not None and len(r["x"]) >= 2:
        xs = np.linspace(min(r["x"]), max(r["x"]), 10)
        ax.plot(xs, r["slope"] * xs + r["intercept"], "--", label=f"r = {fmt(r['r'], 2)}, n = {r['n']}")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"{r['distance']} of the training crops to cR_train")
    ax.set_ylabel("mean test F1")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_val_curves(histories: dict[str, list[list[dict[str, float]]]], path: Path) -> None:
    """Validation F1 per epoch per set: one thin line per seed, the mean thick (seed Fig. 4.11)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (name, runs) in enumerate(histories.items()):
        colour = f"C{i % 10}"
        for h in runs:
            ax.plot([r["epoch"] for r in h], [r["val_f1"] for r in h], color=colour, alpha=0.3, lw=0.8)
        n = min(len(h) for h in runs)
        mean = np.mean([[r["val_f1"] for r in h[:n]] for h in runs], axis=0)
        ax.plot(range(1, n + 1), mean, color=colour, lw=2, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("F1 on R_val (best threshold)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_mix(s: Summary, refiners: Sequence[str], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for c, pts in mix_series(s, refiners).items():
        _errorbar(ax, [p[0] for p in pts], [p[2] for p in pts], label=c)
    ax.set_xlabel("k (refined images added, in multiples of |R_train|)")
    ax.set_ylabel("test F1")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_detections(runs: dict[str, tuple[Path, float]], path: Path, n: int) -> None:
    """Rows: detectors (name -> predictions file, threshold); columns: the first ``n`` test images."""
    plt = pyplot()
    fig, axes = plt.subplots(len(runs), n, figsize=(3.2 * n, 2.6 * len(runs)), squeeze=False)
    for row, (name, (file, thr)) in zip(axes, runs.items()):
        files, preds, gts = read_predictions(file)
        for ax, f, p, g in zip(row, files, preds, gts):
            ax.imshow(draw_detections(load_rgb(Path(f)), g, p["boxes"], p["scores"], thr))
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=8)
        for ax in row[len(files):]:
            ax.axis("off")
    fig.suptitle("test images: ground truth green, detections >= the validation threshold red", fontsize=9)
    _save(fig, path)
