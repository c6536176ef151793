"""train_detector -> evaluate -> report on the tiny real render, with the identity refiner (cheap, and a
known answer: its crops equal the synthetic crops, so their distance is 0 and no label is lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest

from pipeline.io.atomic import write_json_atomic
from pipeline.detection.predictions import read_predictions
from pipeline.metrics.detection import best_threshold, coco_ap, prf1
from pipeline.params import load_params
from stages.detection import train_detector
from tests.conftest import ROOT, copy_tree, crop_and_identity_refine, run_stage, write_params

SETS = ["R", "identity", "R+1xidentity"]
SEEDS = [0, 1]
OVERRIDES = {
    "refine": {"run": ["identity"]},
    "train_detector": {"sets": SETS, "input_size": [144, 192], "width": 0.25, "anchors": 4, "epochs": 2,
                       "batch_size": 2},
    "evaluate": {"seeds": SEEDS, "kid_subsets": 5},
    "report": {"detections": 2},
}


@pytest.fixture(scope="module")
def work(rendered, tmp_path_factory):
    w = copy_tree(rendered, tmp_path_factory.mktemp("detector") / "w")
    write_params(w, OVERRIDES)
    crop_and_identity_refine(w)
    res = run_stage("stages.detection.training_sets", w, "--synthetic", "data/render", "--real_train",
                    "data/real/train", "--reinserted", "data/reinserted", "--out", "data/sets",
                    "--metrics", "metrics/training_sets.json")
    assert res.returncode == 0, res.stderr[-3000:]
    return w


def _train_args(name: str, seed: int) -> list[str]:
    return ["--set", name, "--seed", str(seed), "--data", f"data/sets/{name}", "--real", "data/real",
            "--out", f"data/detectors/{name}-{seed}",
            "--plots", f"metrics/train_detector/{name}-{seed}.csv",
            "--metrics", f"metrics/train_detector/{name}-{seed}.json"]


def test_train_detector_stage_selects_on_val_and_tests_once(work):
    res = run_stage("stages.detection.train_detector", work, *_train_args("R+1xidentity", 0))
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((work / "metrics/train_detector/R+1xidentity-0.json").read_text())
    out = work / "data/detectors/R+1xidentity-0"
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and m["best_epoch"] == 1 + int(np.argmax([h["val_f1"] for h in history]))
    assert m["threshold"] == history[m["best_epoch"] - 1]["val_threshold"]
    n_real = len(json.loads((work / "data/real/train/coco.json").read_text())["images"])
    assert m["train_images"] == 2 * n_real  # R_train + 1 x |R_train| refined images
    # test metrics are the stored test predictions scored at the VALIDATION threshold
    files, preds, gts = read_predictions(out / "test_predictions.json")
    assert all("data/real/test" in f for f in files)
    at_val = prf1(preds, gts, iou=0.5, conf=m["threshold"])
    assert m["test_f1"] == pytest.approx(at_val["f1"]) and m["test_tp"] == at_val["tp"]
    assert m["test_ap50"] == pytest.approx(coco_ap(preds, gts)["ap50"], nan_ok=True)
    assert best_threshold(preds, gts)[1] >= m["test_f1"]  # the test-optimal threshold is never used
    csv = (work / "metrics/train_detector/R+1xidentity-0.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,") and len(csv) == 3
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])  # the per-test store the stage wrote to
    run = mlflow.search_runs(experiment_names=["detection"], output_format="list",
                             filter_string="tags.train_set = 'R+1xidentity'")[0]
    assert run.info.run_name == "train_detector@R+1xidentity-0" and run.data.tags["seed"] == "0"
    assert run.data.metrics["test_f1"] == pytest.approx(m["test_f1"])
    per_epoch = [m.step for m in mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_f1") if m.step > 0]
    assert sorted(per_epoch) == [1, 2]  # one point per epoch (+ the kept epoch's value at step 0)


def test_evaluate_and_report(work):
    p = load_params(work / "params.yaml")
    for name in SETS:
        for seed in SEEDS:
            if (work / f"metrics/train_detector/{name}-{seed}.json").exists():
                continue
            metrics = train_detector.run(p.train_detector, p.evaluate.iou, name, seed, p.refine.run,
                                         work / f"data/sets/{name}", work / "data/real",
                                         work / f"data/detectors/{name}-{seed}")
            write_json_atomic(work / f"metrics/train_detector/{name}-{seed}.json", metrics)
    res = run_stage("stages.detection.evaluate", work, "--crops", "data/crops", "--refined", "data/refined",
                    "--synthetic", "data/render", "--reinserted", "data/reinserted", "--detectors", "data/detectors",
                    "--runs", "metrics/train_detector", "--refiners", "metrics/refine", "--out", "data/evaluate",
                    "--metrics", "metrics/evaluate.json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "notice: FID/KID not computed" in res.stderr
    s = json.loads((work / "data/evaluate/summary.json").read_text())
    assert set(s["sets"]) == set(SETS) and s["inception"] is False
    f1s = [json.loads((work / f"metrics/train_detector/R-{seed}.json").read_text())["test_f1"] for seed in SEEDS]
    assert s["sets"]["R"]["test_f1"]["mean"] == pytest.approx(np.mean(f1s)) and s["sets"]["R"]["test_f1"]["n"] == 2
    assert [(c["a"], c["b"]) for c in s["comparisons"]] == [("identity", "R"), ("R+1xidentity", "R")]
    ident = s["distances"]["identity"]
    assert "fid" not in ident["S"] and "fd_squeezedet_R" in ident["S"]
    assert ident["S"]["fd_squeezedet_R"] == pytest.approx(0.0, abs=1e-6)  # identity crops are the synthetic crops
    assert ident["R"]["fd_squeezedet_R"] > 1e-3 and ident["R"]["n_a"] == ident["S"]["n_a"] > 1
    drop = s["label_preservation"]["identity"]["drop"]
    assert drop["n"] == 2 and abs(drop["mean"]) <= 0.1
    metrics = json.loads((work / "metrics/evaluate.json").read_text())
    assert "fd_squeezedet_R" in metrics["distance_to_R"]["S"] and "fid" not in json.dumps(metrics)

    res = run_stage("stages.detection.report", work, "--evaluation", "data/evaluate", "--detectors",
                    "data/detectors", "--out", "reports/detection", "--metrics", "metrics/report.json")
    assert res.returncode == 0, res.stderr[-3000:]
    rep = work / "reports/detection"
    for f in ("report.md", "test_f1.png", "pca.png", "f1_vs_distance.png", "val_curves.png", "mix_ratio.png",
              "detections.png", "mix_ratio.csv", "f1_vs_distance.csv"):
        assert (rep / f).is_file() and (rep / f).stat().st_size > 0, f
    md = (rep / "report.md").read_text()
    assert "`R+1xidentity`" in md and "no FID is reported" in md and "| 1 | `identity` |" in md
    assert "## What the intervals separate" in md and "`identity` − `R`" in md and "Separated by these runs:" in md
    mix = (rep / "mix_ratio.csv").read_text().splitlines()
    assert mix[0].startswith("added,k,set") and any(",1.0,R+1xidentity," in line for line in mix)


def test_evaluate_with_inception_weights_reports_fid(work, tmp_path):
    """The FID path with EXPLICITLY RANDOM Inception weights in the pytorch-fid file layout (the real
    weights cannot be downloaded here): the numbers are meaningless, the plumbing and keys are not."""
    import torch
    import torchvision

    if not (work / "data/evaluate/summary.json").exists():
        pytest.skip("needs test_evaluate_and_report's detectors")
    w = copy_tree(work, tmp_path / "w")
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(net.state_dict(), tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    write_params(w, {**OVERRIDES, "evaluate": {**OVERRIDES["evaluate"], "inception_weights": str(tmp_path)}})
    res = run_stage("stages.detection.evaluate", w, "--crops", "data/crops", "--refined", "data/refined",
                    "--synthetic", "data/render", "--reinserted", "data/reinserted", "--detectors", "data/detectors",
                    "--runs", "metrics/train_detector", "--refiners", "metrics/refine", "--out", "data/evaluate",
                    "--metrics", "metrics/evaluate.json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "notice" not in res.stderr
    s = json.loads((w / "data/evaluate/summary.json").read_text())
    assert s["inception"] is True and s["distance_key"] == "fid"
    ident = s["distances"]["identity"]
    assert ident["S"]["fid"] == pytest.approx(0.0, abs=1e-3) and ident["R"]["fid"] > 0
    assert {"kid", "kid_std", "fd_squeezedet_R", "n_a", "n_b"} <= set(ident["R"])


def test_training_sets_are_folders_of_their_own(work):
    """Each set folder holds only its parts (so its detectors depend on it alone), with the sources' bytes."""
    from pipeline.detection.detector.sets import compose, load_set, parse_set

    sets = work / "data/sets"
    assert sorted(p.name for p in sets.iterdir()) == sorted(SETS)
    assert sorted(p.name for p in (sets / "R").iterdir()) == ["R", "set.json"]
    meta = json.loads((sets / "R+1xidentity/set.json").read_text())
    n_real = len(json.loads((work / "data/real/train/coco.json").read_text())["images"])
    assert meta["n_real"] == n_real and [[p["source"] for p in ph] for ph in meta["phases"]] == [["R", "identity"]]
    assert json.loads((sets / "R/set.json").read_text())["n_real"] is None  # no <k>x part: |R_train| not read
    coco = json.loads((sets / "identity/identity/coco.json").read_text())
    src = json.loads((work / "data/reinserted/identity/coco.json").read_text())
    assert [a["head_bbox"] for a in coco["annotations"]] == [a["head_bbox"] for a in src["annotations"]]
    assert all("mask_file" not in im for im in coco["images"])
    for im in coco["images"]:
        assert (sets / "identity/identity" / im["file_name"]).read_bytes() == \
               (work / "data/reinserted/identity" / im["file_name"]).read_bytes()
    # the same samples (and the same seeded <k>x draw) as composing from the source folders
    roots = {"R": work / "data/real/train", "identity": work / "data/reinserted/identity"}
    for seed in (0, 1):
        a = load_set(sets / "R+1xidentity", "head", seed)
        b = compose(parse_set("R+1xidentity", ["identity"]), roots, "head", seed)
        assert [s.image.name for s in a] == [s.image.name for s in b] and len(a) == 2 * n_real
        assert all(np.array_equal(x.boxes, y.boxes) for x, y in zip(a, b))


def _evaluate(work) -> subprocess.CompletedProcess:
    return run_stage("stages.detection.evaluate", work, "--crops", "data/crops", "--refined", "data/refined",
                     "--synthetic", "data/render", "--reinserted", "data/reinserted", "--detectors", "data/detectors",
                     "--runs", "metrics/train_detector", "--refiners", "metrics/refine", "--out", "data/evaluate",
                     "--metrics", "metrics/evaluate.json")


def test_refiner_config_runs_and_compare(work):
    """evaluate logs one MLflow run per refiner config; pipeline.detection.compare shows the runs behind the workspace's
    results, not the latest ones (an override experiment that ran later)."""
    from pipeline.params import load_params as load

    if not (work / "data/evaluate/summary.json").exists():
        pytest.skip("needs test_evaluate_and_report's detectors")
    res = _evaluate(work)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads((work / "data/evaluate/summary.json").read_text())
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["detection"], output_format="list",
                              filter_string="tags.kind = 'refiner_config'")
    assert [r.info.run_name for r in runs] == ["refiner_config@identity"]
    run = runs[0]
    digest = load(work / "params.yaml").digest("detection")
    assert run.data.tags["params_hash"] == digest and run.data.params["arch"] == "identity"
    assert run.data.params["loss.cyc_pixel"] == "0.0"  # the identity refiner trains no loss
    m = run.data.metrics
    assert m["f1_test"] == pytest.approx(s["sets"]["identity"]["test_f1"]["mean"])
    assert m["f1_test_ci_low"] == pytest.approx(s["sets"]["identity"]["test_f1"]["lo"])
    assert m["f1_test.R _ 1xidentity"] == pytest.approx(s["sets"]["R+1xidentity"]["test_f1"]["mean"])
    assert m["recall_drop"] == pytest.approx(s["label_preservation"]["identity"]["drop"]["mean"])
    assert m["fd_to_R"] == pytest.approx(s["distances"]["identity"]["R"]["fd_squeezedet_R"])
    assert "refiner_train_seconds" in m and "f1_test" == sorted(m)[0]  # the compare view's default metric axis

    def compare(*args):
        return subprocess.run([sys.executable, "-m", "pipeline.detection.compare", *args], cwd=work, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})

    out = compare()
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == f"Runs behind the results in metrics (params hash {digest})."
    row = next(line for line in out.stdout.splitlines() if line.startswith("| identity |"))
    assert f"| {round(m['f1_test'], 4)} |" in row
    url = compare("--url")
    assert url.returncode == 0 and run.info.run_id in url.stdout and "1 refiner configs" in url.stderr

    # another evaluation runs later (other params), then the workspace gets its first result back, as
    # `dvc exp apply` or a flow that puts params.yaml back would: compare follows the workspace
    first = (work / "metrics/evaluate.json").read_bytes()
    write_params(work, {**OVERRIDES, "evaluate": {**OVERRIDES["evaluate"], "seeds": [0]}})
    try:
        assert _evaluate(work).returncode == 0
        assert (work / "metrics/evaluate.json").read_bytes() != first
        latest = compare("--url")
        assert latest.returncode == 0 and run.info.run_id not in latest.stdout
        assert compare("--all", "--url").stdout == latest.stdout  # the newest run of every stage
        (work / "metrics/evaluate.json").write_bytes(first)
        again = compare("--url")
        assert again.returncode == 0 and run.info.run_id in again.stdout
    finally:
        write_params(work, OVERRIDES)
    other = compare("--exp", "no-such-experiment")
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "no-such-experiment" in other.stderr
