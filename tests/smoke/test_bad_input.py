"""Bad input through real stage processes (``python -m``, as DVC runs them): one line naming the culprit, exit
status 2, no traceback, nothing half-written. The full corpus of cases runs in-process in
test_bad_input_corpus.py; these few keep the process boundary (exit status, stderr) honest."""

import shutil

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


def test_missing_vgg_weights_fail_before_training(rendered, tmp_path):
    write_params(tmp_path, {"refine": {"run": ["C_CPCF"], "vgg_weights": str(tmp_path / "nowhere.pth")},
                            "train_detector": {"sets": ["R"]}})
    res = run_stage("stages.detection.refine", tmp_path, "--name", "C_CPCF", "--crops", str(rendered / "data/crops"),
                    "--out", "out", "--checkpoints", "ck")
    _assert_clean_failure(res, "refine.configs.C_CPCF", "nowhere.pth", "vgg16-397923af.pth")
    assert "epoch" not in res.stderr and not (tmp_path / "out").exists()
