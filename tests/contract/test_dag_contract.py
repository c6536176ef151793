"""dvc.yaml, params.yaml and stages/ agree with each other."""

import dataclasses
import importlib

import yaml

from pipeline.domains import DOMAINS
from pipeline.params import all_sections, load_params
from tests.conftest import ROOT

SECTIONS = all_sections()

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _stages():
    for name, st in DVC["stages"].items():
        yield name, st.get("do", st)


def module_of(stage: str) -> str:
    """``crop`` → stages.detection.crop; ``sensor_train_gan`` → stages.sensor.train_gan (the pipeline whose
    params sections include the stage's own section, from the registry)."""
    domain = next(name for name, d in DOMAINS.items() if stage in d.sections)
    rest = stage.removeprefix(f"{domain}_")
    return f"stages.{domain}.{rest}"


def _lookup(key: str):
    node = PARAMS
    for item in ("${item}", "${item.variant}"):  # a foreach/matrix stage over ``<section>.run``: its first item
        if item in key:
            key = key.replace(item, PARAMS[key.split(".")[0]]["run"][0])
    for part in key.split("."):
        node = node[part]
    return node


def test_every_stage_has_module_and_reads_its_own_section():
    for name, st in _stages():
        module = module_of(name)
        assert module in st["cmd"], name
        mod = importlib.import_module(module)
        assert callable(mod.run) and callable(mod.main)
        assert module.replace(".", "/") + ".py" in st["deps"]
        own = [p for p in st["params"] if p.split(".")[0] == name]
        assert own, f"stage {name} must read params from its own section {name}:"


def test_params_are_dotted_and_exist():
    for name, st in _stages():
        for key in st["params"]:
            assert "." in key, f"{name}: list dotted keys, not the bare section {key!r}"
            _lookup(key)  # KeyError if params.yaml lacks it


def test_stage_params_cover_their_section():
    # Every leaf of a stage's own section is listed (directly or through a parent key).
    for name, st in _stages():
        if "foreach" in DVC["stages"][name]:
            continue  # they list one config/variant per foreach item, checked below
        listed = set(st["params"])
        # a matrix axis (e.g. train_detector.sets) is part of the stage name, not a param dependency
        listed |= {v[2:-1] for v in st.get("matrix", {}).values() if isinstance(v, str) and v.startswith("${")}
        # a matrix over a GAN section's variants lists ``variants.${item.variant}``: the one it trains
        listed |= {k[:-len(".${item.variant}")] for k in listed if k.endswith(".${item.variant}")}
        for f in dataclasses.fields(SECTIONS[name]):
            assert f"{name}.{f.name}" in listed, f"{name}.{f.name} is read by stage {name} but not listed"


def test_sections_match_the_schema_and_validate():
    assert set(PARAMS) == set(SECTIONS)
    load_params(ROOT / "params.yaml")
    assert set(PARAMS["refine"]["run"]) <= set(PARAMS["refine"]["configs"])


def test_module_sizes_follow_conventions():
    for name, _ in _stages():
        src = (ROOT / (module_of(name).replace(".", "/") + ".py")).read_text()
        assert "import bpy" not in src
    for path in (ROOT / "pipeline").rglob("*.py"):
        text = path.read_text()
        if "import bpy" in text:
            assert "render/blender" in str(path), f"{path} imports bpy outside the fence"
        assert "import mlflow" not in text or path.name == "tracking.py", path


def test_every_deployment_entrypoint_resolves_to_a_flow():
    import inspect

    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    from pipeline.flows.deploy import deployments

    specs = deployments(ROOT)
    assert {s.pool for s in specs} == {"cpu", "gpu"}
    assert [(s.entrypoint.split(":")[1], s.name) for s in specs if s.cron] == [
        *((name, "nightly") for name in DOMAINS), ("refiner_sweep", "weekly")]
    for spec in specs:
        flow = load_flow_from_entrypoint(str(ROOT / spec.entrypoint))
        assert isinstance(flow, Flow), spec.entrypoint
        accepted = inspect.signature(flow.fn).parameters
        assert set(spec.parameters) <= set(accepted), (spec.name, set(spec.parameters) - set(accepted))
        flow.validate_parameters(spec.parameters)  # types match the flow's signature


def test_gpu_stages_exist_in_the_dag():
    from pipeline.flows.dag import GPU_STAGES, PlannedStage

    stages = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    assert {"refine", "train_detector", "sensor_train_gan"} <= stages
    assert {"refine", "train_detector", "sensor_train_gan", "audio_train_gan", "anime_train_gan",
            "video_train_gan"} == GPU_STAGES
    assert PlannedStage("sensor_train_gan@dcgan", "sensor_train_gan", ()).gpu
    assert not PlannedStage("sensor_classify", "sensor_classify", ()).gpu


def test_foreach_stages_list_every_shared_key_of_their_section():
    # a foreach stage over its own section's ``run`` (reinsert loops over refine.run and reads no such list),
    # or a matrix over ``run`` x ``seeds`` (a domain's GAN variants, each trained once per seed)
    foreach = {name: "${item}" for name, st in DVC["stages"].items() if st.get("foreach") == f"${{{name}.run}}"}
    foreach |= {name: "${item.variant}" for name, st in DVC["stages"].items()
                if st.get("matrix", {}).get("variant") == f"${{{name}.run}}"}
    assert "refine" in foreach and {"sensor_train_gan", "audio_train_gan"} <= set(foreach)
    for name, item in foreach.items():
        per_item = "configs" if name == "refine" else "variants"
        axes = {"run", per_item} | ({"seeds"} if item != "${item}" else set())
        if item != "${item}":
            assert DVC["stages"][name]["matrix"]["seed"] == f"${{{name}.seeds}}", name
        listed = set(dict(_stages())[name]["params"])
        for f in dataclasses.fields(SECTIONS[name]):
            if f.name not in axes:
                assert f"{name}.{f.name}" in listed, f"{name}.{f.name} is read by stage {name} but not listed"
        assert f"{name}.{per_item}.{item}" in listed
