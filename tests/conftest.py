"""Shared fixtures: an isolated MLflow store, tiny params and the repo root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# Small enough for a 2-core CI run, but still real Blender renders.
TINY = {
    "render": {"seed": 3, "images": 3, "shards": 2, "samples": 4,
               "camera": {"width": 192, "height": 144, "lens_mm": 3.0}},
    "real": {"train": 2, "val": 1, "test": 1},
    "crop": {"size": 48},
    "refine": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "ngf": 8, "n_blocks": 2, "ndf": 8},
    "train_detector": {"sets": ["R", "C_CP_S"], "input_size": [144, 192], "width": 0.25, "anchors": 4,
                       "epochs": 1, "batch_size": 2},
    "evaluate": {"seeds": [0], "kid_subsets": 5},
    "report": {"detections": 1},
    "sensor_prepare": {"stride": 100},
    "sensor_train_gan": {"run": ["dcgan", "cwgan_gp"], "epochs": 2, "samples_per_class": 8, "ngf": 8, "ndf": 8},
    "sensor_classify": {"epochs": 2, "minirocket_kernels": 84},
    # audio domain (issue 7)
    "audio_synthesize": {"accents": ["en-us"], "voices": ["m1", "m2", "f1"], "test_voices": 1, "repeats": 1,
                         "images_per_class": 60, "test_images": 0.5},
    "audio_features": {"epochs": 2},
    "audio_train_gan": {"run": ["cgan", "sn_hinge_proj_fbank"], "epochs": 1, "steps_per_epoch": 2,
                        "samples_per_clip": 2},
    "audio_evaluate": {"epochs": 1, "gains": [0.5, 1.0, 2.0], "kid_subsets": 5, "kid_subset_size": 50},
    # anime domain (issue 8)
    "anime_prepare": {"images": 40, "supersample": 2},
    "anime_train_gan": {"run": ["dcgan", "cdcgan_ema"], "epochs": 1, "batch_size": 8, "ngf": 8, "ndf": 8,
                        "samples_per_class": 4},
    "anime_classify": {"epochs": 1, "detector_images": 8, "ms_ssim_pairs": 20, "kid_subsets": 5,
                       "kid_subset_size": 10, "plot_examples": 4},
    # video domain (issue 9)
    "video_prepare": {"size": 16, "frames": 4, "digit_size": 8, "speed": [1.0, 3.0], "train_clips": 24,
                      "test_clips": 12},
    "video_train_gan": {"run": ["inflated", "wgan_gp"], "epochs": 1, "pretrain_epochs": 1, "batch_size": 8,
                        "samples": 8, "latent_dim": 8, "ngf": 4, "ndf": 4, "interpolations": 2,
                        "interpolation_steps": 3},
    "video_classify": {"width": 4, "epochs": 1, "is_splits": 2, "am_steps": 2, "am_samples": 6,
                       "ms_ssim_pairs": 10, "gif_clips": 4},
}


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory, monkeypatch):
    store = tmp_path_factory.mktemp("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def write_params(folder: Path, overrides: dict | None = None) -> Path:
    """Write the repo's params.yaml, deep-merged with TINY and then ``overrides``, into ``folder``."""
    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    path = folder / "params.yaml"
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    path.write_text(yaml.safe_dump(merge(merge(base, TINY), overrides or {})))
    return path


def scratch_project(proj: Path, overrides: dict | None = None) -> Path:
    """A git + DVC copy of the project (code, dvc.yaml, DVC config) with TINY params, committed."""
    proj.mkdir(parents=True)
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, proj / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, proj / name)
    shutil.copytree(ROOT / ".dvc", proj / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    write_params(proj, overrides)
    for cmd in (["init", "-q"], ["config", "user.email", "ci@example.org"], ["config", "user.name", "ci"],
                ["add", "-A"], ["commit", "-qm", "scratch project"]):
        subprocess.run(["git", *cmd], cwd=proj, check=True, capture_output=True)
    return proj


def run_stage(module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a stage module as DVC would, from ``cwd`` (which holds params.yaml)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> Path:
    """A tiny rendered synthetic set and real split, shared by smoke tests (rendered once)."""
    work = tmp_path_factory.mktemp("rendered")
    write_params(work)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    for module, out in (("stages.detection.render", "data/render"), ("stages.detection.real", "data/real")):
        res = subprocess.run([sys.executable, "-m", module, "--out", out], cwd=work, capture_output=True,
                             text=True, env=env)
        assert res.returncode == 0, res.stderr[-2000:]
    return work


def crop_and_identity_refine(work: Path) -> None:
    """Run crop, refine@identity and reinsert@identity in ``work`` (which holds data/render, data/real)."""
    for module, args in [
        ("stages.detection.crop", ["--synthetic", "data/render", "--real_train", "data/real/train",
                                   "--out", "data/crops"]),
        ("stages.detection.refine", ["--name", "identity", "--crops", "data/crops", "--out", "data/refined/identity",
                                     "--checkpoints", ".checkpoints/identity", "--metrics",
                                     "metrics/refine/identity.json"]),
        ("stages.detection.reinsert", ["--name", "identity", "--dataset", "data/render", "--crops",
                                       "data/crops/synthetic", "--refined", "data/refined/identity",
                                       "--out", "data/reinserted/identity"]),
    ]:
        res = run_stage(module, work, *args)
        assert res.returncode == 0, (module, res.stderr[-2000:])


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def write_box_dataset(root: Path, n: int, w: int = 64, h: int = 48, seed: int = 0) -> Path:
    """``n`` black images with one white 12x10 head box each, in the COCO contract (no masks)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        x, y = int(rng.integers(0, w - 12)), int(rng.integers(0, h - 10))
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[y:y + 10, x:x + 12] = 255
        Image.fromarray(rgb).save(root / f"images/{i:03d}.png")
        images.append({"id": i + 1, "file_name": f"images/{i:03d}.png", "width": w, "height": h})
        anns.append({"id": i + 1, "image_id": i + 1, "bbox": [x, y, 12, 10], "head_bbox": [x, y, 12, 10],
                     "keypoints": [x + 6, y + 5, 2], "area": 120})
    (root / "coco.json").write_text(json.dumps({"images": images, "annotations": anns}))
    return root


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """Prefect's test harness: a real temporary API server and database for the session's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A ~100-byte PNG whose header says width x height (8-bit grey): a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def stop_processes(procs: list[subprocess.Popen], grace: float = 20) -> None:
    """Terminate servers and workers a test started, then kill any still running after ``grace`` seconds."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def server_json(method: str, url: str, *, json: dict | None = None, patience: float = 180.0):
    """One JSON request to a server a test started on 127.0.0.1 (Prefect on SQLite, MLflow).

    On a loaded 2-core machine such a server can take longer than any fixed read timeout to answer while
    workers poll it, so a timeout or dropped connection is retried until ``patience`` seconds have passed;
    an HTTP error status is not retried and raises at once.
    """
    import time

    import httpx

    deadline = time.monotonic() + patience
    while True:
        try:
            r = httpx.request(method, url, json=json, timeout=30)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
            continue
        r.raise_for_status()
        return r.json()
