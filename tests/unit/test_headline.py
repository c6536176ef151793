"""Headline metrics (pipeline.headline): every stage has a few, from one vocabulary, picked correctly."""

from __future__ import annotations

import re

import yaml

from pipeline.headline import HEADLINES, headline
from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_writes_its_headline_as_its_only_dvc_metric():
    for name, st in DVC.items():
        body = st.get("do", st)
        assert name in HEADLINES, name
        detail = re.search(r'--metrics "?([^" ]+)', body["cmd"]).group(1)
        head = re.search(r'--headline "?([^" ]+)', body["cmd"]).group(1)
        assert head == detail.replace("metrics/", "metrics/headline/", 1), name
        assert body["metrics"] == [head] and detail in body["outs"], name


def test_the_columns_fit_a_terminal():
    # the union of every stage's headline keys is the width of ``dvc metrics show``
    columns = set().union(*(f({}) for f in HEADLINES.values()))
    assert len(columns) <= 30, sorted(columns)


def _ci(mean):
    return {"mean": mean, "std": None, "lo": None, "hi": None, "n": 1}


def test_domain_reports_name_the_best_variant_the_alarm_did_not_flag():
    m = {"real": {"accuracy": 0.99}, "collapsed": {"one": True, "good": False, "weak": False},
         "variants": {"one": {"generated_accuracy": _ci(1.0), "discriminative": {"accuracy": _ci(1.0)}},
                      "good": {"generated_accuracy": _ci(0.9), "discriminative": {"accuracy": _ci(0.8)},
                               "diversity_ratio": _ci(0.7)},
                      "weak": {"generated_accuracy": _ci(0.5)}}}
    assert headline("sensor_classify", m) == {"best": "good", "generated_accuracy": 0.9, "discriminative": 0.8,
                                              "diversity_ratio": 0.7, "accuracy": 0.99, "collapsed": 1}
    m["collapsed"] = {v: True for v in m["variants"]}  # all flagged: the best of them, and the count says so
    assert headline("sensor_classify", m)["best"] == "one" and headline("sensor_classify", m)["collapsed"] == 3


def test_detection_headlines():
    ev = {"sets": {"S": {"mean": 0.3, "ap50_mean": 0.2}, "S>R": {"mean": 0.6, "ap50_mean": 0.5},
                   "R": {"mean": None}}}
    assert headline("evaluate", ev) == {"best": "S>R", "test_f1": 0.6, "test_ap50": 0.5}
    assert headline("real", {"train_images": 2.0, "test_images": 3.0, "train_people": 4.0, "val_people": 1.0}) == \
        {"images": 5.0, "people": 5.0}
    assert headline("train_detector@R-0", {"val_f1": 0.5, "test_f1": 0.4, "test_ap50": 0.3, "train_seconds": 9,
                                           "test_tp": 3}) == \
        {"val_f1": 0.5, "test_f1": 0.4, "test_ap50": 0.3, "train_seconds": 9}
    video = {"real": {"is_c3d": 3.0, "temporal_change": 0.04, "accuracy": 0.95}, "collapsed": {"v": False},
             "variants": {"v": {"is_c3d": _ci(1.5), "ms_ssim": _ci(0.4), "temporal_change": _ci(0.02)}}}
    assert headline("video_classify", video) == {"best": "v", "is_ratio": 0.5, "ms_ssim": 0.4, "temporal_ratio": 0.5,
                                                  "accuracy": 0.95, "collapsed": 0}
