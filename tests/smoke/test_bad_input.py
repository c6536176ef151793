"""Bad input: one line naming the culprit, exit status 2, no traceback, nothing half-written."""

import shutil

import pytest

from tests.conftest import run_stage, write_params


def _assert_clean_failure(res, *needles):
    assert res.returncode == 2, res.stderr[-1500:]
    # Progress bars may precede it, but the error itself is exactly one line, and the last.
    lines = [ln for ln in res.stderr.strip().splitlines() if "it/s]" not in ln and "img/s]" not in ln]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr[-1500:]
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in errors[0]


def test_unknown_param_fails_before_any_work(tmp_path):
    write_params(tmp_path, {"crop": {"sizee": 3}})
    res = run_stage("stages.detection.render", tmp_path, "--out", "out")
    _assert_clean_failure(res, "crop.sizee: unknown key")
    assert not (tmp_path / "out").exists() and not any(tmp_path.glob(".out*"))


def test_wrong_type_names_key_and_type(tmp_path):
    write_params(tmp_path, {"crop": {"size": "128px"}})
    res = run_stage("stages.detection.crop", tmp_path, "--synthetic", "a", "--real_train", "b", "--out", "c")
    _assert_clean_failure(res, "crop.size: expected int >= 8 and a multiple of 4, got '128px'")


def test_missing_coco(tmp_path):
    write_params(tmp_path)
    res = run_stage("stages.detection.crop", tmp_path, "--synthetic", "nope", "--real_train", "nope", "--out", "c")
    _assert_clean_failure(res, "nope/coco.json: COCO file not found")
    assert not (tmp_path / "c").exists()


def test_corrupt_image_is_named_and_output_not_left(rendered, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(rendered / "data/render", data / "render")
    shutil.copytree(rendered / "data/real/train", data / "train")
    victim = data / "render/images/000001.png"
    victim.write_bytes(victim.read_bytes()[:200])
    write_params(tmp_path)
    res = run_stage("stages.detection.crop", tmp_path, "--synthetic", "data/render", "--real_train", "data/train",
                    "--out", "data/crops")
    _assert_clean_failure(res, "000001.png: unreadable or corrupt image")
    assert not (data / "crops").exists() and not list(data.glob(".crops*"))


def test_empty_split(rendered, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/coco.json").write_text('{"images": [], "annotations": []}')
    write_params(tmp_path)
    res = run_stage("stages.detection.crop", tmp_path, "--synthetic", "empty", "--real_train", "empty",
                    "--out", "c")
    _assert_clean_failure(res, "empty/coco.json: empty split")


def test_unknown_refiner_lists_known(rendered, tmp_path):
    write_params(tmp_path, {"refine": {"run": ["nope"], "configs": {"nope": {"arch": "cyclegann"}}},
                            "train_detector": {"sets": ["R"]}})
    res = run_stage("stages.detection.refine", tmp_path, "--name", "nope", "--crops", "x", "--out", "y",
                    "--checkpoints", "c")
    _assert_clean_failure(res, "refine.configs.nope.arch: unknown arch 'cyclegann' (known: identity")


def test_missing_vgg_weights_fail_before_training(rendered, tmp_path):
    write_params(tmp_path, {"refine": {"run": ["C_CPCF"], "vgg_weights": str(tmp_path / "nowhere.pth")},
                            "train_detector": {"sets": ["R"]}})
    res = run_stage("stages.detection.refine", tmp_path, "--name", "C_CPCF", "--crops", str(rendered / "data/crops"),
                    "--out", "out", "--checkpoints", "ck")
    _assert_clean_failure(res, "refine.configs.C_CPCF", "nowhere.pth", "vgg16-397923af.pth")
    assert "epoch" not in res.stderr and not (tmp_path / "out").exists()


def test_detector_set_naming_a_refiner_not_run(tmp_path):
    write_params(tmp_path, {"train_detector": {"sets": ["R", "R+C_CPCF"]}})
    res = run_stage("stages.detection.train_detector", tmp_path, "--set", "R", "--seed", "0", "--data", "a",
                    "--real", "b", "--out", "d", "--plots", "e.csv")
    _assert_clean_failure(res, "train_detector.sets: 'R+C_CPCF': unknown part 'C_CPCF'")


def test_missing_squeezenet_weights_fail_before_reading_data(tmp_path):
    write_params(tmp_path, {"train_detector": {"pretrained": True, "width": 1.0, "batch_norm": False,
                                               "backbone_weights": str(tmp_path / "nowhere.pth")}})
    res = run_stage("stages.detection.train_detector", tmp_path, "--set", "R", "--seed", "0", "--data", "no_data_here",
                    "--real", "no_data_here", "--out", "d", "--plots", "e.csv")
    _assert_clean_failure(res, "nowhere.pth", "squeezenet1_1-b8a52dc0.pth", "train_detector.backbone_weights")
    assert not (tmp_path / "d").exists()


def test_missing_inception_weights_when_asked_for(tmp_path):
    write_params(tmp_path, {"evaluate": {"inception_weights": str(tmp_path / "inception.pth")}})
    res = run_stage("stages.detection.evaluate", tmp_path, "--crops", "a", "--refined", "b", "--synthetic", "c",
                    "--reinserted", "d", "--detectors", "e", "--runs", "f", "--refiners", "h", "--out", "g")
    _assert_clean_failure(res, "inception.pth", "pt_inception-2015-12-05-6726825d.pth", "evaluate.inception_weights")
    assert not (tmp_path / "g").exists()


def test_sensor_source_that_is_not_a_folder(tmp_path):
    write_params(tmp_path, {"sensor_prepare": {"source": "no/such/MotionSense"}})
    res = run_stage("stages.sensor.prepare", tmp_path, "--out", "prep")
    _assert_clean_failure(res, "sensor_prepare.source: 'no/such/MotionSense' is neither")
    assert not (tmp_path / "prep").exists()


def test_sensor_classify_without_gan_samples(tmp_path):
    write_params(tmp_path, {"sensor_prepare": {"stride": 100}})
    assert run_stage("stages.sensor.prepare", tmp_path, "--out", "prep").returncode == 0
    res = run_stage("stages.sensor.classify", tmp_path, "--prepared", "prep", "--gans", "gans", "--out", "rep")
    _assert_clean_failure(res, "gans/dcgan-0/samples.npz: not found (run sensor_train_gan@dcgan-0)")
    assert not (tmp_path / "rep").exists()
