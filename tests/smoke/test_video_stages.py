"""Video stages on TINY params: prepare → train_gan@<variant> → classify, outputs and MLflow runs;
bad input exits 2 with one line naming the culprit and leaves nothing half-written."""

import json

import numpy as np
from PIL import Image

from tests.conftest import TINY, run_stage, write_params
from tests.smoke.test_bad_input import _assert_clean_failure


def test_video_stages_end_to_end(tmp_path):
    variants = [*TINY["video_train_gan"]["run"], "sprite"]  # + the content/motion sprite generator
    write_params(tmp_path, {"video_train_gan": {"run": variants}})
    res = run_stage("stages.video.prepare", tmp_path, "--out", "prep", "--metrics", "m/prep.json")
    assert res.returncode == 0, res.stderr[-2000:]
    prep = json.loads((tmp_path / "m/prep.json").read_text())
    assert prep["train_clips"] == 24 and prep["test_clips"] == 12 and prep["classes"] == 6  # 3 digits x 2 axes
    with np.load(tmp_path / "prep/train.npz") as z:
        assert z["x"].shape == (24, 1, 4, 16, 16) and z["x"].dtype == np.uint8
    with Image.open(tmp_path / "prep/preview.gif") as gif:
        assert gif.n_frames == 4 and gif.is_animated  # one GIF frame per clip frame
    for name in variants:
        res = run_stage("stages.video.train_gan", tmp_path, "--name", name, "--seed", "0", "--prepared", "prep",
                        "--out", f"gans/{name}-0", "--plots", f"m/{name}-0.csv", "--metrics", f"m/{name}-0.json")
        assert res.returncode == 0, res.stderr[-2000:]
        for f in ("model.pt", "samples.npz", "samples.gif", "interpolation.gif", "samples.png"):
            assert (tmp_path / f"gans/{name}-0/{f}").is_file(), f
    assert json.loads((tmp_path / "m/inflated-0.json").read_text())["pretrain_epochs"] == 1
    res = run_stage("stages.video.classify", tmp_path, "--prepared", "prep", "--gans", "gans", "--out", "rep",
                    "--metrics", "m/classify.json")
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((tmp_path / "m/classify.json").read_text())
    assert set(m["variants"]) == set(variants) and m["scorer"] == "c3d" and m["real"]["conditioner"] == "r2plus1d"
    assert set(m["runs"]) == {f"{v}-0" for v in variants} and set(m["collapsed"]) == set(variants)
    for row in [m["real"], m["noise"], *m["runs"].values()]:
        assert row["is_c3d"] >= 1.0 - 1e-9 and 0 <= row["temporal_change"] <= 1 and -1 <= row["ms_ssim"] <= 1
    assert all(0 <= r["am"]["scorer_hit"] <= 1 for r in m["runs"].values())
    assert all(r["seeds"] == [0] and r["is_c3d"]["n"] == 1 for r in m["variants"].values())
    report = (tmp_path / "rep/report.md").read_text()
    assert "| real test (reference) |" in report and "`wgan_gp`" in report and "seeds 0" in report
    for f in ("real.gif", "inflated.gif", "inflated_interpolation.gif", "wgan_gp_am.gif", "losses.png"):
        assert (tmp_path / "rep" / f).is_file(), f

    from pipeline.tracking import search_runs

    runs = search_runs("video")
    names = set(runs["tags.mlflow.runName"])
    assert {"video_prepare", "video_classify", *(f"video_train_gan@{n}-0" for n in variants)} <= names


def test_video_source_that_is_not_a_folder(tmp_path):
    write_params(tmp_path, {"video_prepare": {"source": "no/such/UCF101"}})
    res = run_stage("stages.video.prepare", tmp_path, "--out", "prep")
    _assert_clean_failure(res, "video_prepare.source: 'no/such/UCF101' is neither")
    assert not (tmp_path / "prep").exists()


def test_video_undecodable_file_is_named_and_nothing_written(tmp_path):
    bad = tmp_path / "ucf/Jump/v_Jump_g01_c01.avi"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00not a video\x00" * 64)
    write_params(tmp_path, {"video_prepare": {"source": str(tmp_path / "ucf")}})
    res = run_stage("stages.video.prepare", tmp_path, "--out", "prep")
    _assert_clean_failure(res, "v_Jump_g01_c01.avi: undecodable video")
    assert not (tmp_path / "prep").exists() and not list(tmp_path.glob(".prep*"))


def test_video_bad_variant_fails_before_any_work(tmp_path):
    write_params(tmp_path, {"video_train_gan": {"variants": {"wgan_gp": {"loss": "wgan-gp", "norm": "batch"}}}})
    res = run_stage("stages.video.train_gan", tmp_path, "--name", "wgan_gp", "--seed", "0", "--prepared", "p",
                    "--out", "o", "--plots", "x.csv")
    _assert_clean_failure(res, "video_train_gan.variants.wgan_gp.norm: a WGAN-GP critic cannot use batch norm")
