"""The shared pretrained-weights resolver: a params key's path or torch hub's cache, never a download."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.detection.detector import squeezedet
from pipeline.detection.refiner import vgg
from pipeline.errors import PipelineError
from pipeline.metrics import distances
from pipeline.nn.weights import WeightsSource, hub_checkpoints

SOURCE = WeightsSource("Toy weights", "toy-123.pth", "stage.toy_weights", "put {file} in {hub} or set {key}")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub checkpoint folder under a temporary TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    folder = tmp_path / "th" / "hub" / "checkpoints"
    assert hub_checkpoints() == folder
    return folder


def test_missing_file_is_one_line_naming_key_and_file(tmp_path, hub):
    missing = tmp_path / "nope" / "w.pth"
    with pytest.raises(PipelineError) as err:
        SOURCE.resolve(str(missing))
    msg = str(err.value)
    assert "\n" not in msg and type(err.value) is PipelineError
    assert msg == f"Toy weights not found at {missing}: put toy-123.pth in {hub} or set stage.toy_weights"
    with pytest.raises(PipelineError, match=r"^other\.stage: .* or set other\.key$"):
        SOURCE.resolve(missing, key="other.key", who="other.stage")


def test_existing_file_resolves(tmp_path, monkeypatch):
    f = tmp_path / "any-name.pth"
    f.write_bytes(b"x")
    assert SOURCE.resolve(str(f)) == f
    assert SOURCE.resolve(f) == f
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SOURCE.resolve("~/any-name.pth") == f


@pytest.mark.parametrize("unset", [None, ""])
def test_unset_path_means_torch_hub_cache(hub, unset):
    with pytest.raises(PipelineError, match=str(hub / "toy-123.pth")):
        SOURCE.resolve(unset)
    hub.mkdir(parents=True)
    (hub / "toy-123.pth").write_bytes(b"x")
    assert SOURCE.resolve(unset) == hub / "toy-123.pth"


def test_aliases_and_folders(tmp_path, hub):
    src = WeightsSource("Toy weights", "toy.pth", "k", "get {file} for {key}", aliases=("toy-alias.pth",),
                        folders=True)
    # Neither name in the hub: the error names the folder searched, not one of the names.
    with pytest.raises(PipelineError, match=f"not found at {hub}: get toy.pth for k$"):
        src.resolve(None)
    hub.mkdir(parents=True)
    (hub / "toy-alias.pth").write_bytes(b"x")
    assert src.resolve(None) == hub / "toy-alias.pth"
    (hub / "toy.pth").write_bytes(b"x")
    assert src.resolve(None) == hub / "toy.pth"  # the canonical name first
    folder = tmp_path / "mine"
    folder.mkdir()
    with pytest.raises(PipelineError, match=f"not found at {folder}:"):
        src.resolve(folder)
    (folder / "toy-alias.pth").write_bytes(b"x")
    assert src.resolve(str(folder)) == folder / "toy-alias.pth"
    # Without ``folders`` a folder is just a path that is not a file.
    with pytest.raises(PipelineError, match=f"not found at {folder}:"):
        SOURCE.resolve(folder)


def test_error_subclass(tmp_path):
    class Missing(PipelineError):
        pass

    src = WeightsSource("Toy weights", "toy.pth", "k", "{key}", error=Missing)
    with pytest.raises(Missing):
        src.resolve(tmp_path / "nope.pth")


def test_how_to_supply(hub):
    assert SOURCE.how_to_supply() == f"put toy-123.pth in {hub} or set stage.toy_weights"
    assert SOURCE.how_to_supply("x.y").endswith("or set x.y")


@pytest.mark.parametrize("resolve, key, file, error", [
    (squeezedet.resolve_backbone_weights, "train_detector.backbone_weights", squeezedet.WEIGHTS_FILE, PipelineError),
    (vgg.resolve_vgg_weights, "refine.vgg_weights", vgg.WEIGHTS_FILE, PipelineError),
    (distances.resolve_inception_weights, "weights_path", distances.INCEPTION_WEIGHTS_FILE,
     distances.InceptionWeightsMissing),
])
def test_pipeline_sources(tmp_path, hub, resolve, key, file, error):
    """Each network's resolver: a missing path names it, the key and the file; None looks in the hub."""
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(error) as err:
        resolve(str(missing))
    msg = str(err.value)
    assert "\n" not in msg and str(missing) in msg and key in msg and file in msg
    with pytest.raises(error):
        resolve(None)
    hub.mkdir(parents=True)
    (hub / file).write_bytes(b"x")
    assert resolve(None) == hub / file
    assert resolve(str(hub / file)) == hub / file


def test_inception_finds_torch_fidelity_name_in_a_folder(tmp_path, hub):
    alias = "weights-inception-2015-12-05-6726825d.pth"
    (tmp_path / alias).write_bytes(b"x")
    assert distances.resolve_inception_weights(str(tmp_path)) == tmp_path / alias
    hub.mkdir(parents=True)
    (hub / alias).write_bytes(b"x")
    assert distances.resolve_inception_weights(None) == hub / alias


def test_no_heavy_imports():
    code = "import sys, pipeline.nn.weights; print(sorted({'torchvision', 'mlflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout
    assert out.strip() == "[]"
