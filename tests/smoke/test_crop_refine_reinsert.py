"""crop -> identity refine -> reinsert on a real render reproduces the render."""

import numpy as np
import pandas as pd

from pipeline.io.coco import read_coco
from pipeline.io.images import load_mask, load_rgb
from tests.conftest import crop_and_identity_refine, run_stage


def test_identity_round_trip_through_the_stages(rendered):
    w = rendered
    crop_and_identity_refine(w)
    manifest = pd.read_csv(w / "data/crops/synthetic/manifest.csv")
    coco = read_coco(w / "data/render/coco.json")
    assert len(manifest) == len(coco.annotations) > 0
    assert (manifest["size"] == 48).all()
    assert len(pd.read_csv(w / "data/crops/real_train/manifest.csv")) > 0
    for f in manifest["crop_file"]:
        assert np.array_equal(load_rgb(w / "data/crops/synthetic" / f), load_rgb(w / "data/refined/identity" / f))
    for im in coco.images:
        a = load_rgb(w / "data/render" / im.file_name).astype(int)
        b = load_rgb(w / "data/reinserted/identity" / im.file_name).astype(int)
        inside = load_mask(w / "data/render" / im.mask_file) > 0
        assert np.abs(a - b)[inside].max(initial=0) <= 1
        assert np.array_equal(a[~inside], b[~inside])
    assert read_coco(w / "data/reinserted/identity/coco.json").annotations == coco.annotations


def test_cyclegan_config_trains_and_refines(rendered):
    """One tiny C_CP_S run through the stage: a trained model, refined crops that differ, a history."""
    import json

    if not (rendered / "data/crops").exists():
        test_identity_round_trip_through_the_stages(rendered)
    res = run_stage("stages.detection.refine", rendered, "--name", "C_CP_S", "--crops", "data/crops",
                    "--out", "data/refined/C_CP_S", "--checkpoints", ".checkpoints/C_CP_S")
    assert res.returncode == 0, res.stderr[-2000:]
    out = rendered / "data/refined/C_CP_S"
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and {"loss_G", "loss_D", "G_cyc_pixel", "G_gan"} <= set(history[0])
    assert (out / "model.pt").is_file() and list((rendered / ".checkpoints/C_CP_S").glob("*/last.pt"))
    manifest = pd.read_csv(out / "manifest.csv")
    diffs = [np.abs(load_rgb(out / f).astype(int) - load_rgb(rendered / "data/crops/synthetic" / f)).mean()
             for f in manifest["crop_file"]]
    assert len(diffs) == len(pd.read_csv(rendered / "data/crops/synthetic/manifest.csv")) and max(diffs) > 0.5
