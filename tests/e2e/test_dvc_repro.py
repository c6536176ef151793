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
    # As on a user's machine: stages write __pycache__ next to the code they depend on, which must not
    # count as a change of those dependencies (.dvcignore).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    res = subprocess.run([f"{BIN}/dvc", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _ran(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}


def _domain_stages(proj: Path) -> set[str]:
    """The domain flows' stages (``<domain>_<stage>``), foreach stages expanded over their ``run`` lists and
    the GAN stages' matrix over ``run`` x ``seeds`` (``<variant>-<seed>``)."""
    stages = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((proj / "params.yaml").read_text())
    out: set[str] = set()
    for name, st in stages.items():
        if name.split("_")[0] not in ("sensor", "audio", "anime", "video"):
            continue
        if "matrix" in st:
            out |= {f"{name}@{v}-{seed}" for v in params[name]["run"] for seed in params[name]["seeds"]}
        else:
            out |= {f"{name}@{v}" for v in params[name]["run"]} if "foreach" in st else {name}
    return out


def test_dvc_repro_runs_all_then_nothing_then_only_downstream(tmp_path):
    proj = scratch_project(tmp_path / "proj")

    first = _ran(_dvc(proj, "repro"))
    runs = yaml.safe_load((ROOT / "params.yaml").read_text())["refine"]["run"]
    branches = {f"{s}@{n}" for s in ("refine", "reinsert") for n in runs}
    detectors = {f"train_detector@{s}-{seed}" for s in TINY["train_detector"]["sets"]
                 for seed in TINY["evaluate"]["seeds"]}
    downstream = detectors | {"evaluate", "report"}
    domains = _domain_stages(proj)
    assert {"sensor_prepare", "sensor_classify"} <= domains
    assert first == {"render", "real", "crop", "training_sets"} | branches | downstream | domains
    for n in runs:
        assert (proj / f"data/reinserted/{n}/coco.json").is_file()
    assert (proj / "metrics/render.json").is_file()
    assert (proj / "reports/detection/report.md").is_file()
    shown = _dvc(proj, "metrics", "show")  # the headline files only: one readable table
    for d in detectors:
        assert f"metrics/headline/train_detector/{d.split('@')[1]}.json" in shown
    header = shown.splitlines()[0].split()
    assert {"test_f1", "generated_accuracy", "best"} <= set(header) and len(header) <= 31, header
    assert "fd_squeezedet_R" not in shown and "fd_squeezedet_R" in (proj / "metrics/evaluate.json").read_text()
    assert "metrics/headline/sensor_classify.json" in shown and (proj / "reports/sensor/report.md").is_file()

    second = _dvc(proj, "repro")
    assert _ran(second) == set() and "up to date" in second

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["crop"]["size"] = 40
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    log = _dvc(proj, "repro")
    # the R set's folder does not change with the crops, so its detectors are not retrained
    reach = {d for d in detectors if not d.startswith("train_detector@R-")} | {"training_sets", "evaluate", "report"}
    assert _ran(log) == {"crop"} | branches | reach, log

    # Changing one config's weight reruns only that config's branch and the detectors of the sets holding it.
    assert set(TINY["train_detector"]["sets"]) == {"R", runs[0]}
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["refine"]["configs"][runs[0]]["losses"]["cyc_pixel"] = 7
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    status = _dvc(proj, "status")
    assert [line.rstrip(":") for line in status.splitlines() if line and not line[0].isspace()] == [
        f"refine@{runs[0]}"], status  # DVC reports the stage whose params changed; the rest follows its outputs
    log = _dvc(proj, "repro")
    assert _ran(log) == {f"refine@{runs[0]}", f"reinsert@{runs[0]}", "training_sets", "evaluate", "report"} | {
        d for d in detectors if d.startswith(f"train_detector@{runs[0]}-")}, log

    # A detector knob reruns the detectors and what reads them, nothing upstream.
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["train_detector"]["lr"] *= 0.5
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    assert _ran(_dvc(proj, "repro")) == downstream
    status = _dvc(proj, "status")
    assert "changed" not in status

    # A domain's GAN knob reruns that domain's GANs and classifier, nothing else.
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["sensor_train_gan"]["epochs"] += 1
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    assert _ran(_dvc(proj, "repro")) == {s for s in domains if s.startswith(("sensor_train_gan@", "sensor_classify"))}
