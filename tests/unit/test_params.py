import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.params import load_params, parse_params
from tests.conftest import ROOT


def test_repo_params_are_valid():
    p = load_params(ROOT / "params.yaml")
    assert p.render.camera.width > 0 and p.crop.size >= 8


@pytest.mark.parametrize("raw, message", [
    ({"crop": {"size": "128px"}}, "crop.size: expected int >= 8 and a multiple of 4, got '128px'"),
    ({"crop": {"size": 0}}, "crop.size: expected int >= 8 and a multiple of 4, got 0"),
    ({"crop": {"sise": 3}}, "crop.sise: unknown key"),
    ({"crop": {"size": 42}}, "crop.size: expected int >= 8 and a multiple of 4, got 42"),
    ({"cropp": {}}, "cropp: unknown params section"),
    ({"render": {"camera": {"width": 1.5}}}, "render.camera.width: expected int > 0, got 1.5"),
    ({"render": {"denoise": "yes"}}, "render.denoise: expected bool, got 'yes'"),
    ({"render": {"scene": {"sitting": [5, 1]}}}, "render.scene.sitting: expected list of int, int min <= max"),
    ({"render": {"scene": {"room_m": [3]}}}, "render.scene.room_m: expected list of float, float > 0, got [3]"),
    ({"reinsert": {"mode": "blend"}}, "reinsert.mode: expected one of residual, paste, got 'blend'"),
    ({"refine": {"run": "identity"}}, "refine.run: expected list of str (non-empty), got 'identity'"),
    ({"render": {"backgrounds": 3}}, "render.backgrounds: expected str or null, got 3"),
])
def test_bad_params_name_the_key(raw, message):
    with pytest.raises(PipelineError) as err:
        parse_params(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_defaults_and_types():
    p = parse_params({"render": {"scene": {"room_m": [6, 5]}}, "crop": {"offset": 0}})
    assert p.render.scene.room_m == (6.0, 5.0)
    assert isinstance(p.crop.offset, float)
    assert p.reinsert.mode == "residual"


def test_sections_are_frozen():
    p = parse_params({})
    with pytest.raises(Exception):
        p.crop.size = 3


def test_bad_yaml_is_one_line(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("crop: [\n")
    with pytest.raises(PipelineError, match="params.yaml: line .* is not valid YAML"):
        load_params(f)


def test_digest_changes_with_values():
    assert parse_params({"crop": {"size": 64}}).digest() != parse_params({"crop": {"size": 96}}).digest()
    assert yaml.safe_load("{}") == {}


@pytest.mark.parametrize("configs, message", [
    ({"X": {"arch": "cyclegan", "losses": {"cyc_pixle": 10}}}, "refine.configs.X.losses.cyc_pixle: unknown loss term"),
    ({"X": {"arch": "cyclegan", "losses": {"cyc_pixel": "ten"}}}, "refine.configs.X.losses.cyc_pixel: expected float"),
    ({"X": {"arch": "cyclegan", "skip": "yes"}}, "refine.configs.X.skip: expected bool, got 'yes'"),
    ({"X": {"arch": "cyclegn"}}, "refine.configs.X.arch: unknown arch 'cyclegn'"),
    ({"X": {"arch": "identity", "ngf": 8}}, "refine.configs.X.ngf: unknown key for arch identity"),
    ({"X": "cyclegan"}, "refine.configs.X: expected a mapping"),
])
def test_every_refiner_config_is_validated_at_load(configs, message):
    # also a config that refine.run does not train: a typo stops before any stage runs, not after render
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["refine"]["configs"].update(configs)
    with pytest.raises(PipelineError) as err:
        parse_params(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_refiner_loss_terms_match_the_implemented_losses():
    from pipeline.detection.params import LOSS_TERMS, VGG_TERMS
    from pipeline.detection.refiner.losses import LOSSES

    assert tuple(LOSSES) == LOSS_TERMS and VGG_TERMS <= set(LOSS_TERMS)


def _validate(args, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pipeline.params", *args], cwd=cwd, capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_params_cli_validates_a_file_or_a_profile(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    ok = _validate([], tmp_path)
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok"), ok.stderr
    (tmp_path / "fast.yaml").write_text("train_detector:\n  epochs: 2\n")
    assert _validate(["fast.yaml"], tmp_path).stdout.strip() == "ok"
    (tmp_path / "typo.yaml").write_text("refine:\n  configs:\n    C_CP_S: {arch: cyclegan, losses: {cyc_pxl: 1}}\n")
    bad = _validate(["typo.yaml"], tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "error: refine.configs.C_CP_S.losses.cyc_pxl: unknown loss term (known: gan, cyc_pixel, id_pixel, cyc_feat, "
        "id_feat, cyc_disc_feat, mean_feat)"]
    raw["crop"]["size"] = "128px"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    bad = _validate([], tmp_path)
    assert bad.returncode == 2 and "crop.size: expected int" in bad.stderr and "Traceback" not in bad.stderr


def test_an_empty_or_partial_params_file_and_a_duplicate_key_are_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("")
    bad = _validate([], tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: params.yaml: empty params file (start from the repository's params.yaml)")
    (tmp_path / "params.yaml").write_text("render:\n  seed: 0\n")
    bad = _validate([], tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: params.yaml: missing params sections real, crop,")
    assert len(bad.stderr.strip().splitlines()) == 1
    text = (ROOT / "params.yaml").read_text().replace("  images: 24\n", "  images: 24\n  images: 48\n", 1)
    (tmp_path / "params.yaml").write_text(text)
    bad = _validate([], tmp_path)
    line = text.splitlines().index("  images: 48") + 1
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: params.yaml line {line}: duplicate key 'images'"
