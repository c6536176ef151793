"""Face sets: the procedural stand-in or an image folder → square RGB faces, labels, train/test split.

The prepared folder (the anime_prepare output) holds ``images/<split>/<n>.png``, ``labels.csv`` (one row
per image: file, split, class, label and any further attributes) and ``meta.json`` (classes, attribute).
A user folder is read recursively; labels come from first-level sub-folders or a CSV with a ``file``
column (paths relative to the folder) and the attribute column. Every image is centre-cropped to a square
and resized to ``size``; unreadable files, images smaller than ``min_size`` and (with non_rgb = reject)
non-RGB images stop the stage with an error naming the file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.io.images import load_rgb, open_image, save_rgb
from pipeline.io.tables import read_csv_rows
from pipeline.train import pixels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
UNLABELLED = "face"  # the single class of an unlabelled set


@dataclass(frozen=True)
class FaceSet:
    x: np.ndarray  # (n, size, size, 3) uint8 RGB
    y: np.ndarray  # (n,) int64 class index
    rows: list[dict[str, str]]  # labels.csv rows


def load_face(path: Path, size: int, min_size: int, non_rgb: str) -> np.ndarray:
    """One image → (size, size, 3) uint8: checked, converted to RGB, centre-cropped, resized (Lanczos)."""
    try:
        with open_image(path) as im:
            im.load()
            mode, (w, h) = im.mode, im.size
            if mode != "RGB":
                if non_rgb == "reject":
                    raise PipelineError(f"{path}: image mode {mode}, not RGB (anime_prepare.non_rgb is reject)")
                if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                    rgba = im.convert("RGBA")
                    im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
                im = im.convert("RGB")
            if min(w, h) < min_size:
                raise PipelineError(f"{path}: {w}x{h} pixels, smaller than anime_prepare.min_size = {min_size}")
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PipelineError(f"{path}: unreadable or corrupt image ({type(exc).__name__})") from None


def _image_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise PipelineError(f"anime_prepare.source: {str(root)!r} is neither 'procedural' nor a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise PipelineError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _csv_labels(path: Path, attribute: str) -> dict[str, str]:
    if not path.is_file():
        raise PipelineError(f"anime_prepare.labels: {path} not found")
    rows = read_csv_rows(path, ("file", attribute), hint=f"anime_prepare.attribute is {attribute!r}")
    return {r["file"].replace("\\", "/"): r[attribute] for r in rows}


def folder_labels(root: Path, files: list[Path], labels: str | None, attribute: str) -> list[str]:
    """The class name of every file: from its first-level sub-folder, a CSV, or one class when unlabelled."""
    rel = [f.relative_to(root).as_posix() for f in files]
    if labels is None:
        return [UNLABELLED] * len(files)
    if labels == "folders":
        flat = [r for r in rel if "/" not in r]
        if flat:
            raise PipelineError(f"{root / flat[0]}: not inside a class sub-folder (anime_prepare.labels is folders)")
        return [r.split("/")[0] for r in rel]
    table = _csv_labels(Path(labels), attribute)
    missing = [r for r in rel if r not in table]
    if missing:
        raise PipelineError(f"{labels}: no row for image {missing[0]!r}")
    extra = sorted(set(table) - set(rel))
    if extra:
        raise PipelineError(f"{labels}: row for {extra[0]!r}, which is not an image under {root}")
    return [table[r] for r in rel]


def split(y: np.ndarray, test: float, seed: int) -> np.ndarray:
    """'train'/'test' per item, stratified by class (a class with one item stays in train)."""
    rng = np.random.default_rng(seed)
    out = np.full(len(y), "train", dtype=object)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = max(1, round(test * len(idx))) if len(idx) >= 2 else 0
        out[idx[:n_test]] = "test"
    if not (out == "test").any() or not (out == "train").any():
        raise PipelineError("anime_prepare: too few images to split into train and test")
    return out


def write_prepared(out: Path, x: np.ndarray, names: list[str], attrs: list[dict[str, Any]], where: np.ndarray,
                   meta: dict[str, Any]) -> None:
    """PNG per face under out/images/<split>/, labels.csv and meta.json (classes in meta['classes'])."""
    classes = meta["classes"]
    rows = []
    for split_name in ("train", "test"):
        (out / "images" / split_name).mkdir(parents=True)
        for n, i in enumerate(np.flatnonzero(where == split_name)):
            file = f"images/{split_name}/{n:05d}.png"
            save_rgb(out / file, x[i])
            rows.append({"file": file, "split": split_name, "class": classes.index(names[i]), "label": names[i],
                         **attrs[i]})
    with (out / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def read_prepared(folder: Path, splits: tuple[str, ...] = ("train", "test")) -> tuple[dict, dict[str, FaceSet]]:
    """meta.json and the requested splits of an anime_prepare output."""
    meta_file, table = folder / "meta.json", folder / "labels.csv"
    for f in (meta_file, table):
        if not f.is_file():
            raise PipelineError(f"{f}: not found (run the anime_prepare stage)")
    meta = json.loads(meta_file.read_text())
    rows = read_csv_rows(table, ("file", "split", "class"))
    sets = {}
    for s in splits:
        mine = [r for r in rows if r["split"] == s]
        x = np.stack([load_rgb(folder / r["file"]) for r in mine]) if mine else np.zeros((0, 64, 64, 3), np.uint8)
        sets[s] = FaceSet(x, np.array([int(r["class"]) for r in mine], dtype=np.int64), mine)
    return meta, sets


def to_unit(x: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8 → (n, 3, H, W) float32 in [-1, 1] (the GAN's and the classifier's range)."""
    return pixels.to_unit(x.transpose(0, 3, 1, 2))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """(n, 3, H, W) in [-1, 1] → (n, H, W, 3) uint8."""
    return pixels.to_uint8(np.asarray(x).transpose(0, 2, 3, 1))


def load_source(source: str, images: int, size: int, labels: str | None, attribute: str, min_size: int,
                non_rgb: str, seed: int, supersample: int) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
    """All faces of the source (n, size, size, 3) uint8, their class names and per-face attributes."""
    if source == "procedural":
        from pipeline.anime.faces import draw_faces

        x, attrs = draw_faces(seed, images, size, supersample)
        return x, [a[attribute] for a in attrs], attrs
    root = Path(source)
    files = _image_files(root)
    names = folder_labels(root, files, labels, attribute)
    bar = tqdm(files, desc="loading faces", unit="img")
    try:
        x = np.stack([load_face(f, size, min_size, non_rgb) for f in bar])
    finally:
        bar.close()  # before the stage prints its error, so that the error stays the last line
    return x, names, [{"source_file": f.relative_to(root).as_posix()} for f in files]
