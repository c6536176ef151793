"""The sensor classify stage's measurements: real accuracy, generated accuracy, TSTR vs TRTR, distributions.

TRTR / TSTR use the same recipe on both sides: our 1D CNN (fixed epochs, z-scored input) and aeon's
MiniRocket + ridge (raw input), trained on real training windows or on generated windows, and always
tested on the real test windows. Only conditional variants produce labelled windows, so TSTR and the
generated-data accuracy exist for them only; every variant gets the distribution checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def evaluate(p: SensorClassifyParams, train: WindowSet, test: WindowSet, zs: ZScaler, classes: list[str],
             rate_hz: float, generated: dict[str, Generated]) -> dict:
    """All metrics of the classify stage as a nested dict (variants under ``variants``)."""
    k = len(classes)
    clf = _ours(p, train.x, train.y, zs, k, "classifier on real")
    mr = minirocket_classifier(train.x, train.y, p.minirocket_kernels, p.seed)
    out: dict = {
        "real": {"accuracy": _acc(clf, test.x, test.y, zs), "minirocket_accuracy": accuracy(mr, test.x, test.y),
                 "train_windows": len(train.x), "test_windows": len(test.x)},
        "reference": {  # what "indistinguishable" looks like: real test against real train
            "psd_distance": psd_distance(test.x, train.x, rate_hz)[0],
            "discriminative": discriminative_score(train.x, test.x, min(p.minirocket_kernels, 1000), p.seed)},
        "variants": {}}
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
        row["discriminative"] = discriminative_score(test.x, gen.x, min(p.minirocket_kernels, 1000), p.seed)
        out["variants"][name] = row
    return out


def table(metrics: dict) -> str:
    """The note's table: real accuracy, generated accuracy, TSTR vs TRTR, distribution checks per variant."""
    real, ref = metrics["real"], metrics["reference"]
    head = ("| variant | generated acc. | TSTR ours | TSTR MiniRocket | TRTR ours | TRTR MiniRocket "
            "| PSD distance | discriminative acc. |\n|---|---|---|---|---|---|---|---|")

    def f(v) -> str:
        return "–" if v is None else f"{v:.3f}"

    rows = [f"| real test vs real train (reference) | – | – | – | {f(real['accuracy'])} | "
            f"{f(real['minirocket_accuracy'])} | {f(ref['psd_distance'])} | {f(ref['discriminative']['accuracy'])} |"]
    for name, r in metrics["variants"].items():
        t = r.get("tstr", {})
        rows.append(f"| `{name}` | {f(r.get('generated_accuracy'))} | {f(t.get('ours'))} | {f(t.get('minirocket'))} "
                    f"| {f(real['accuracy'])} | {f(real['minirocket_accuracy'])} | {f(r['psd_distance'])} | "
                    f"{f(r['discriminative']['accuracy'])} |")
    return "\n".join([head, *rows])
