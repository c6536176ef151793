"""Distributed render with real Blender on tiny settings: two workers at once render half the images each,
and the merge is byte-identical to one worker's render (every image, mask and coco.json). ``real`` goes
through the stage CLI (``--shard K/N --shard-dir``, ``--merge``), ``render`` through the Prefect flow, whose
``dvc commit`` leaves the dvc.lock that ``dvc repro`` writes. The merge's checks on stand-in shards are in
tests/unit/test_render_shard_checks.py."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_stage, scratch_project, write_params

BIN = str(Path(sys.executable).parent)
TINY_RENDER = {"samples": 2, "camera": {"width": 96, "height": 72}}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_real_shards_on_two_workers_merge_to_the_one_worker_bytes(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    real = {"train": 1, "val": 1, "test": 1}
    write_params(work, {"render": {**TINY_RENDER, "shards": 1}, "real": real})
    res = run_stage("stages.detection.real", work, "--out", "one")
    assert res.returncode == 0, res.stderr[-1500:]
    # two workers at once; each may run render.shards processes of its own (shard 1 holds 2 images: 2 here)
    write_params(work, {"render": {**TINY_RENDER, "shards": 2}, "real": real})
    procs = [subprocess.Popen([sys.executable, "-m", "stages.detection.real", "--out", "two", "--shard", f"{k}/2",
                               "--shard-dir", "shards"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}) for k in range(2)]
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outs]
    assert [json.loads(out.splitlines()[-1]) for out, _ in outs] == [{"images": 1, "reused": 0},
                                                                      {"images": 2, "reused": 0}]
    assert not (work / "two").exists()  # a shard writes its folder only
    shutil.move(work / "shards/1", tmp_path / "away")
    res = run_stage("stages.detection.real", work, "--out", "two", "--merge", "shards")
    assert res.returncode == 2 and res.stderr.strip() == "error: shards: shard 1/2 missing (1 of 2 there)"
    assert not (work / "two").exists()
    shutil.move(tmp_path / "away", work / "shards/1")
    write_params(work, {"render": {**TINY_RENDER, "shards": 2}, "real": {**real, "seed": 7}})
    res = run_stage("stages.detection.real", work, "--out", "two", "--merge", "shards")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("error: shards/0: rendered with other params or code than this merge")
    # render.shards (processes per machine) is no part of the specs: merged under the first run's value
    write_params(work, {"render": {**TINY_RENDER, "shards": 1}, "real": real})
    res = run_stage("stages.detection.real", work, "--out", "two", "--merge", "shards")
    assert res.returncode == 0, res.stderr[-1500:]
    one, two = _files(work / "one"), _files(work / "two")
    assert sorted(one) == sorted(two) and len(one) == 9  # 3 splits x (image, mask, coco.json)
    assert [name for name in one if one[name] != two[name]] == []


def _dvc(proj: Path, *args: str) -> str:
    res = subprocess.run([f"{BIN}/dvc", *args], cwd=proj, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res.stdout


def _shard_intervals(flow_run_id) -> list[tuple]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted((r.start_time, r.end_time) for r in runs if r.name.startswith("render shard"))


@pytest.mark.timeout(600)
def test_flow_renders_two_shards_at_once_and_matches_one_worker_and_dvc_repro(tmp_path, prefect_harness,
                                                                               monkeypatch):
    from pipeline.flows.render import render_distributed, restorable

    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])  # stage commands call `python`
    proj = scratch_project(tmp_path / "proj", {"render": {**TINY_RENDER, "images": 2, "shards": 1}})
    state = render_distributed(stage="render", shards=2, root=str(proj), record=False, return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"render": "ran"}
    (a_start, a_end), (b_start, b_end) = _shard_intervals(state.state_details.flow_run_id)
    assert b_start < a_end  # the two shard tasks ran at the same time
    assert not (proj / ".dvc/tmp/shards/render").exists()
    assert json.loads(_dvc(proj, "status", "render", "--json")) == {}
    assert "Running stage" not in _dvc(proj, "repro", "render")
    merged, lock = _files(proj / "data/render"), (proj / "dvc.lock").read_text()
    (proj / "dvc.lock").unlink()
    shutil.rmtree(proj / "data/render")
    assert restorable(proj, "render")  # the commit saved a run-cache entry: `dvc repro` restores, not renders
    _dvc(proj, "repro", "-f", "render")  # one worker (render.shards: 1), as a single-machine user runs it
    assert _files(proj / "data/render") == merged and len(merged) == 5  # 2 images, 2 masks, coco.json
    assert (proj / "dvc.lock").read_text() == lock
