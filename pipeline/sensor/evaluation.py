"""The sensor classify stage's measurements: real accuracy, generated accuracy, TSTR vs TRTR, distributions.

TRTR / TSTR use the same recipe on both sides: our 1D CNN (fixed epochs, z-scored input) and aeon's
MiniRocket + ridge (raw input), trained on real training windows or on generated windows, and always
tested on the real test windows. Only conditional variants produce labelled windows, so TSTR and the
generated-data accuracy exist for them only; every variant gets the distribution checks.

Within-class diversity (the collapse alarm's measure): the mean pairwise Euclidean distance between the
z-scored windows of one class, divided by sqrt(channels × steps) (an RMS difference per sample), averaged
over the classes; for a conditional variant the class is its condition, and the reference is the same on
the real training windows (what the GAN learned from). An unconditional variant has no class of its own:
its figure is the pairwise distance over all its windows against the same over all real training windows.
A variant whose diversity is below ``COLLAPSE_DISTANCE_RATIO`` (0.5) × real is flagged as collapsed.
Every run (variant × seed) is scored; the table gives each variant's mean ± t-interval over its seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.metrics.generative import collapse_alarm, collapse_label
from pipeline.metrics.stats import fmt_ci, over_seeds
from pipeline.metrics.timeseries import accuracy, discriminative_score, minirocket_classifier, psd_distance
from pipeline.sensor.nets import Classifier1D
from pipeline.sensor.data import WindowSet, ZScaler
from pipeline.sensor.params import SensorClassifyParams
from pipeline.train.classifier import fit_classifier, predict_proba


@dataclass(frozen=True)
class Generated:
    x: np.ndarray  # (n, channels, length) in sensor units
    y: np.ndarray  # the condition each window was generated for
    conditional: bool


def _ours(p: SensorClassifyParams, x: np.ndarray, y: np.ndarray, zs: ZScaler, n_classes: int, desc: str):
    return fit_classifier(lambda: Classifier1D(x.shape[1], n_classes), zs.transform(x), y, p.epochs,
                          p.batch_size, p.lr, p.seed, p.device, desc)


def _acc(model, x: np.ndarray, y: np.ndarray, zs: ZScaler) -> float:
    return float((predict_proba(model, zs.transform(x)).argmax(1) == y).mean())


def pairwise_distance(x: np.ndarray, max_n: int = 200) -> float:
    """Mean Euclidean distance between distinct windows of ``x`` (n, channels, steps), per sqrt(element);
    the first ``max_n`` windows (fewer than 2: NaN)."""
    f = np.asarray(x[:max_n], np.float64).reshape(min(len(x), max_n), -1)
    if len(f) < 2:
        return float("nan")
    sq = (f * f).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * f @ f.T, 0.0))
    return float(d[np.triu_indices(len(f), 1)].mean() / np.sqrt(f.shape[1]))


def diversity(x: np.ndarray, y: np.ndarray | None, zs: ZScaler) -> float:
    """Within-class diversity (module docstring): per-class pairwise distance of z-scored windows, averaged
    over classes; ``y`` None: over all windows."""
    z = zs.transform(x)
    if y is None:
        return pairwise_distance(z)
    return float(np.nanmean([pairwise_distance(z[y == c]) for c in np.unique(y)]))


def evaluate(p: SensorClassifyParams, train: WindowSet, test: WindowSet, zs: ZScaler, classes: list[str],
             rate_hz: float, generated: dict[str, Generated], runs: dict[str, tuple[str, int]]) -> dict:
    """All metrics of the classify stage as a nested dict: every run under ``runs``, each variant's mean and
    interval over its seeds under ``variants``, the collapse alarm per variant under ``collapsed``."""
    k = len(classes)
    clf = _ours(p, train.x, train.y, zs, k, "classifier on real")
    mr = minirocket_classifier(train.x, train.y, p.minirocket_kernels, p.seed)
    out: dict = {
        "real": {"accuracy": _acc(clf, test.x, test.y, zs), "minirocket_accuracy": accuracy(mr, test.x, test.y),
                 "train_windows": len(train.x), "test_windows": len(test.x),
                 "diversity": diversity(train.x, train.y, zs), "diversity_all": diversity(train.x, None, zs)},
        "reference": {  # what "indistinguishable" looks like: real test against real train
            "psd_distance": psd_distance(test.x, train.x, rate_hz)[0],
            "discriminative": discriminative_score(train.x, test.x, min(p.minirocket_kernels, 1000), p.seed,
                                                   train.source, test.source),
            "diversity_ratio": diversity(test.x, test.y, zs) / diversity(train.x, train.y, zs)},
        "runs": {}}
    out["trtr"] = {"ours": out["real"]["accuracy"], "minirocket": out["real"]["minirocket_accuracy"]}
    for name, gen in generated.items():
        row: dict = {"windows": len(gen.x)}
        pred = predict_proba(clf, zs.transform(gen.x)).argmax(1)
        row["predicted_share"] = {c: float((pred == i).mean()) for i, c in enumerate(classes)}
        if gen.conditional:
            row["generated_accuracy"] = float((pred == gen.y).mean())
            tstr = _ours(p, gen.x, gen.y, zs, k, f"TSTR {name}")
            row["tstr"] = {"ours": _acc(tstr, test.x, test.y, zs),
                           "minirocket": accuracy(minirocket_classifier(gen.x, gen.y, p.minirocket_kernels,
                                                                        p.seed), test.x, test.y)}
        row["psd_distance"], per = psd_distance(gen.x, train.x, rate_hz)
        row["psd_distance_per_channel"] = per
        # real windows grouped by recording (overlapping windows of one recording stay in one fold); each
        # generated window is drawn on its own
        row["discriminative"] = discriminative_score(test.x, gen.x, min(p.minirocket_kernels, 1000), p.seed,
                                                     real_groups=test.source)
        row["diversity"] = diversity(gen.x, gen.y if gen.conditional else None, zs)
        row["diversity_ratio"] = row["diversity"] / out["real"]["diversity" if gen.conditional else "diversity_all"]
        out["runs"][name] = row
    out["variants"] = over_seeds(out["runs"], runs)
    # the alarm on each variant's mean ratio (real = 1): a collapsed generator cannot top a ranking
    out["collapsed"] = {v: collapse_alarm(m["diversity_ratio"]["mean"], 1.0, "distance")
                        for v, m in out["variants"].items()}
    return out


def table(metrics: dict) -> str:
    """The note's table: per variant (mean ± 95 % t-interval over its seeds) generated accuracy, TSTR vs
    TRTR, distribution checks and within-class diversity; collapsed variants in bold."""
    real, ref = metrics["real"], metrics["reference"]
    head = ("| variant | seeds | generated acc. | TSTR ours | TSTR MiniRocket | TRTR ours | TRTR MiniRocket "
            "| PSD distance | discriminative acc. | diversity / real |\n|---|---|---|---|---|---|---|---|---|---|")

    def f(v) -> str:
        return fmt_ci(v)

    rows = [f"| real test vs real train (reference) | – | – | – | – | {f(real['accuracy'])} | "
            f"{f(real['minirocket_accuracy'])} | {f(ref['psd_distance'])} | {f(ref['discriminative']['accuracy'])} "
            f"| {f(ref['diversity_ratio'])} |"]
    for name, r in metrics["variants"].items():
        t = r.get("tstr", {})
        seeds = ", ".join(str(s) for s in r["seeds"])
        rows.append(f"| {collapse_label(name, metrics['collapsed'][name])} | {seeds} "
                    f"| {f(r.get('generated_accuracy'))} | {f(t.get('ours'))} | {f(t.get('minirocket'))} "
                    f"| {f(real['accuracy'])} | {f(real['minirocket_accuracy'])} | {f(r['psd_distance'])} | "
                    f"{f(r['discriminative']['accuracy'])} | {f(r['diversity_ratio'])} |")
    return "\n".join([head, *rows])
