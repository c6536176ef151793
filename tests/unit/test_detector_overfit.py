"""The demo's detector can learn: with params.yaml's train_detector settings it overfits a few small
images of head-sized blobs on a cluttered, noisy floor to train F1 >= 0.9 within a bounded number of steps.

A loss that goes down is not enough (the demo's detectors once scored F1 0 while their loss fell);
this checks detections, at IoU 0.5, on the images it trained on.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.detection.detector.data import DetectionData, training_data
from pipeline.detection.detector.sets import load_samples
from pipeline.detection.detector.squeezedet import SqueezeDet, kmeans_anchors
from pipeline.detection.detector.training import fit, predict_data
from pipeline.metrics.detection import best_threshold
from pipeline.params import load_params
from pipeline.train.device import deterministic, pick_device
from tests.conftest import ROOT

H, W = 128, 160
IMAGES, EPOCHS = 4, 60  # 60 epochs of 4 steps (4 images x patches_per_image windows, in batches of batch_size)


def _heads_dataset(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` noisy floor images with desks and 4-6 heads (8-13 px discs with a darker hair cap) each."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        im = Image.new("RGB", (W, H), tuple(int(v) for v in rng.integers(90, 170, 3)))
        d = ImageDraw.Draw(im)
        for _ in range(3):  # desks: bright rectangles, bigger than any head
            x, y = rng.integers(0, W - 40), rng.integers(0, H - 30)
            d.rectangle([x, y, x + rng.integers(25, 40), y + rng.integers(18, 30)], fill=(225, 225, 220))
        boxes: list[list[float]] = []
        while len(boxes) < rng.integers(4, 7):
            s = int(rng.integers(8, 14))
            x, y = int(rng.integers(2, W - s - 2)), int(rng.integers(2, H - s - 2))
            if any(x < b[0] + b[2] + 2 and b[0] < x + s + 2 and y < b[1] + b[3] + 2 and b[1] < y + s + 2 for b in boxes):
                continue
            d.ellipse([x, y, x + s - 1, y + s - 1], fill=tuple(int(v) for v in rng.integers(150, 230, 3)))
            d.pieslice([x, y, x + s - 1, y + s - 1], 180, 360, fill=tuple(int(v) for v in rng.integers(20, 90, 3)))
            boxes.append([x, y, s, s])
        rgb = np.asarray(im, np.float32) + rng.normal(0, 12, (H, W, 3))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(root / f"images/{i:03d}.png")
        images.append({"id": i + 1, "file_name": f"images/{i:03d}.png", "width": W, "height": H})
        anns += [{"id": len(anns) + k + 1, "image_id": i + 1, "bbox": b, "head_bbox": b,
                  "keypoints": [b[0] + b[2] / 2, b[1] + b[3] / 2, 2], "area": b[2] * b[3]} for k, b in enumerate(boxes)]
    (root / "coco.json").write_text(json.dumps({"images": images, "annotations": anns}))
    return root


@pytest.mark.timeout(600)
def test_the_demo_detector_overfits_a_few_images(tmp_path):
    p = load_params(ROOT / "params.yaml").train_detector
    p = dataclasses.replace(p, input_size=(H, W), epochs=EPOCHS, augment=False)
    samples = load_samples(_heads_dataset(tmp_path, IMAGES))
    train = training_data(samples, p, 0)  # windows when params.yaml sets train_detector.patch
    steps = EPOCHS * -(-len(train) // p.batch_size)
    assert steps <= 240
    data = DetectionData(samples, (H, W))
    setup = pick_device("cpu")
    with deterministic(0):
        model = SqueezeDet(1, kmeans_anchors(data.box_sizes(), p.anchors, 0), (H, W), p.width, p.dropout, p.stride,
                           p.batch_norm)
        result = fit(model, p, train, data, 0.5, 0, setup)  # selects on the whole training images themselves
    preds = predict_data(model, data, setup, IMAGES)
    threshold, f1 = best_threshold(preds, [s.boxes for s in samples], 0.5)
    first_at_09 = next((h["epoch"] for h in result.history if h["val_f1"] >= 0.9), None)
    assert f1 >= 0.9, (f1, [round(h["val_f1"], 2) for h in result.history[::20]])
    print(f"train F1 {f1:.3f} after {steps} steps; first >= 0.9 at epoch {first_at_09}")
