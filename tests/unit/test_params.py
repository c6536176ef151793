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
