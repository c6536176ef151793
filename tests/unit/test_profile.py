"""Params profiles: the paper and study overlays validate against the schema and becomes one --set-param per leaf."""

import json

import pytest

from pipeline.errors import PipelineError
from pipeline.profile import leaves, set_param_args
from tests.conftest import ROOT


def test_paper_profile_validates_and_sets_every_leaf():
    args = set_param_args(ROOT / "params.paper.yaml", ROOT / "params.yaml")
    pairs = dict(a.split("=", 1) for a in args[1::2])
    assert set(args[0::2]) == {"--set-param"}
    assert json.loads(pairs["refine.ngf"]) == 64 and json.loads(pairs["evaluate.seeds"]) == [0, 1, 2, 3, 4]
    assert "R+0.5xD_S" in json.loads(pairs["train_detector.sets"])
    assert all(" " not in a for a in args)  # one shell word each


def test_study_profile_has_what_the_study_needs():
    """Three seeds; S, R, two refiners alone and added to R, a mix point and a pretrain->fine-tune set."""
    args = set_param_args(ROOT / "params.study.yaml", ROOT / "params.yaml")
    pairs = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args[1::2])}
    assert len(pairs["evaluate.seeds"]) >= 3
    refiners = pairs["refine.run"]
    sets = pairs["train_detector.sets"]
    assert len(refiners) >= 2 and {"S", "R", *refiners, *(f"R+{c}" for c in refiners)} <= set(sets)
    assert any(">" in s for s in sets) and any("x" in s.split("+")[-1] for s in sets)


def test_domains_study_profile_trains_each_domains_variants_with_three_seeds():
    """Every domain's GAN section: >= 3 seeds, and at least the demo's variants plus the seed's own."""
    import yaml

    demo = yaml.safe_load((ROOT / "params.yaml").read_text())
    args = set_param_args(ROOT / "params.domains-study.yaml", ROOT / "params.yaml")
    pairs = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args[1::2])}
    for domain, seed_arch in {"sensor": "dcgan", "audio": "cgan", "anime": "dcgan", "video": "dcgan3d"}.items():
        section = f"{domain}_train_gan"
        assert len(pairs[f"{section}.seeds"]) >= 3, section
        assert set(demo[section]["run"]) | {seed_arch} <= set(pairs[f"{section}.run"]), section


def test_leaves_keep_lists_whole():
    assert leaves({"a": {"b": 1, "c": [1, 2], "d": {"e": None}}}) == {"a.b": 1, "a.c": [1, 2], "a.d.e": None}


def test_bad_profile_names_the_key(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("train_detector:\n  widht: 1.0\n")
    with pytest.raises(PipelineError, match="train_detector.widht: unknown key"):
        set_param_args(bad, ROOT / "params.yaml")
    bad.write_text("train_detector:\n  sets: [S]\n")
    with pytest.raises(PipelineError, match="must include 'R'"):
        set_param_args(bad, ROOT / "params.yaml")
