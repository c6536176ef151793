"""The demo DAG at tiny scale through a real `dvc repro` in a scratch clone of the project."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, TINY, scratch_project

BIN = str(Path(sys.executable).parent)


def _dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "PYTHONPATH": str(cwd)}
    res = subprocess.run([f"{BIN}/dvc", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _ran(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}


def test_dvc_repro_runs_all_then_nothing_then_only_downstream(tmp_path):
    proj = scratch_project(tmp_path / "proj")

    first = _ran(_dvc(proj, "repro"))
    runs = yaml.safe_load((ROOT / "params.yaml").read_text())["refine"]["run"]
    branches = {f"{s}@{n}" for s in ("refine", "reinsert") for n in runs}
    detectors = {f"train_detector@{s}-{seed}" for s in TINY["train_detector"]["sets"]
                 for seed in TINY["evaluate"]["seeds"]}
    downstream = detectors | {"evaluate", "report"}
    sensor = {"sensor_prepare", "sensor_classify"} | {f"sensor_train_gan@{v}" for v in TINY["sensor_train_gan"]["run"]}
    assert first == {"render", "real", "crop"} | branches | downstream | sensor
    for n in runs:
        assert (proj / f"data/reinserted/{n}/coco.json").is_file()
    assert (proj / "metrics/render.json").is_file()
    assert (proj / "reports/detection/report.md").is_file()
    shown = _dvc(proj, "metrics", "show")
    for d in detectors:
        assert f"metrics/train_detector/{d.split('@')[1]}.json" in shown
    assert "test_f1" in shown and "fd_squeezedet_R" in shown
    assert "metrics/sensor_classify.json" in shown and (proj / "reports/sensor/report.md").is_file()

    second = _dvc(proj, "repro")
    assert _ran(second) == set() and "up to date" in second

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["crop"]["size"] = 40
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    log = _dvc(proj, "repro")
    assert _ran(log) == {"crop"} | branches | downstream, log

    # Changing one config's weight reruns only that config's branch.
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["refine"]["configs"][runs[0]]["losses"]["cyc_pixel"] = 7
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    log = _dvc(proj, "repro")
    assert _ran(log) == {f"refine@{runs[0]}", f"reinsert@{runs[0]}"} | downstream, log

    # A detector knob reruns the detectors and what reads them, nothing upstream.
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["train_detector"]["lr"] = 0.002
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    assert _ran(_dvc(proj, "repro")) == downstream
    status = _dvc(proj, "status")
    assert "changed" not in status
