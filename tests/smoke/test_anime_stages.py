"""Anime stages on tiny params: prepare → train_gan@<variant> → classify, and bad input failing cleanly."""

import json

import numpy as np
from PIL import Image

from pipeline.anime.data import write_prepared
from pipeline.anime.faces import draw_faces
from tests.conftest import TINY, run_stage, write_params
from tests.smoke.test_bad_input import _assert_clean_failure


def test_prepare_train_classify(tmp_path):
    # one variant (the EMA one) keeps the file fast; evaluate() on (un)conditional sets is a unit test
    write_params(tmp_path, {"anime_train_gan": {"run": ["cdcgan_ema"]}})
    res = run_stage("stages.anime.prepare", tmp_path, "--out", "prep", "--metrics", "m/prepare.json")
    assert res.returncode == 0, res.stderr[-2000:]
    prep = json.loads((tmp_path / "m/prepare.json").read_text())
    assert prep["images"] == TINY["anime_prepare"]["images"] and prep["classes"] == 6
    assert prep["train_images"] + prep["test_images"] == prep["images"]
    assert len(list((tmp_path / "prep/images/train").glob("*.png"))) == prep["train_images"]
    res = run_stage("stages.anime.train_gan", tmp_path, "--name", "cdcgan_ema", "--seed", "0", "--prepared", "prep",
                    "--out", "gan/cdcgan_ema-0", "--checkpoints", "ck", "--plots", "m/cdcgan_ema-0.csv")
    assert res.returncode == 0, res.stderr[-2000:]
    with np.load(tmp_path / "gan/cdcgan_ema-0/samples.npz") as z:
        assert z["x"].shape == (6 * TINY["anime_train_gan"]["samples_per_class"], 64, 64, 3)
        assert bool(z["conditional"])
    assert not list((tmp_path / "ck").iterdir())  # checkpoints go once the outputs are in place
    assert "loss_G" in (tmp_path / "m/cdcgan_ema-0.csv").read_text()
    res = run_stage("stages.anime.classify", tmp_path, "--prepared", "prep", "--gans", "gan", "--out", "rep",
                    "--metrics", "m/classify.json")
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((tmp_path / "m/classify.json").read_text())
    assert m["real"]["detector"]["detection_rate"] == 1.0  # the stand-in faces are found by the real detector
    assert 0 <= m["real"]["accuracy"] <= 1 and m["reference"]["n"] == m["real"]["test_faces"]
    assert 0 <= m["runs"]["cdcgan_ema-0"]["accuracy_by_condition"] <= 1  # per run, and per variant over seeds
    summary = m["variants"]["cdcgan_ema"]
    assert summary["seeds"] == [0] and summary["accuracy_by_condition"]["n"] == 1
    assert summary["accuracy_by_condition"]["mean"] == m["runs"]["cdcgan_ema-0"]["accuracy_by_condition"]
    assert set(m["collapsed"]) == {"cdcgan_ema"}
    report = (tmp_path / "rep/report.md").read_text()
    assert "`cdcgan_ema`" in report and "FD (attr.-clf. features)" in report and "FID" not in report
    for f in ("real_vs_generated.png", "detections.png", "losses.png", "cdcgan_ema_progress.png",
              "cdcgan_ema_interpolation.png", "cdcgan_ema_samples.png", "summary.csv"):
        assert (tmp_path / "rep" / f).is_file(), f


def test_prepare_names_a_corrupt_image_and_writes_nothing(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(12):
        Image.new("RGB", (48, 48), (i * 20, 100, 100)).save(faces / f"{i:02d}.png")
    (faces / "05.png").write_bytes(b"\x89PNG broken")
    write_params(tmp_path, {"anime_prepare": {"source": str(faces)}, "anime_train_gan": {"run": ["dcgan"]}})
    res = run_stage("stages.anime.prepare", tmp_path, "--out", "prep")
    _assert_clean_failure(res, "05.png: unreadable or corrupt image")
    assert not (tmp_path / "prep").exists() and not list(tmp_path.glob(".prep*"))


def test_prepare_rejects_a_tiny_image(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.new("RGB", (16, 16)).save(faces / "small.png")
    write_params(tmp_path, {"anime_prepare": {"source": str(faces)}, "anime_train_gan": {"run": ["dcgan"]}})
    res = run_stage("stages.anime.prepare", tmp_path, "--out", "prep")
    _assert_clean_failure(res, "small.png: 16x16 pixels, smaller than anime_prepare.min_size = 32")
    assert not (tmp_path / "prep").exists()


def test_train_gan_rejects_a_bad_seed(tmp_path):
    write_params(tmp_path, {"anime_train_gan": {"run": ["dcgan"]}})
    res = run_stage("stages.anime.train_gan", tmp_path, "--name", "dcgan", "--seed", "-1", "--prepared", "prep",
                    "--out", "gan/dcgan--1", "--checkpoints", "ck", "--plots", "m.csv")
    _assert_clean_failure(res, "--seed: expected an int >= 0, got '-1'")


def test_classify_without_gan_samples_names_the_missing_file(tmp_path):
    write_params(tmp_path)
    x, attrs = draw_faces(0, 12, supersample=1)
    names = [a["hair"] for a in attrs]
    write_prepared(tmp_path / "prep", x, names, attrs, np.array(["train"] * 8 + ["test"] * 4),
                   {"classes": sorted(set(names)), "attribute": "hair"})
    res = run_stage("stages.anime.classify", tmp_path, "--prepared", "prep", "--gans", "gans", "--out", "rep")
    _assert_clean_failure(res, "gans/dcgan-0/samples.npz: not found (run anime_train_gan@dcgan-0)")
    assert not (tmp_path / "rep").exists()
