"""Stage ``crop``: one upright crop per head, oriented toward the fisheye centre (seed Algorithm 5),
for the synthetic set S and for the real training split R_train."""

from __future__ import annotations

from pathlib import Path

from pipeline.detection.crops.dataset import crop_dataset, crop_grid_tiles
from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.coco import read_coco
from pipeline.io.images import grid
from pipeline.detection.crops.manifest import read_manifest
from pipeline.detection.params import CropParams
from pipeline.stage import execute, parse_paths


def run(p: CropParams, synthetic: Path, real_train: Path, out: Path) -> dict[str, float]:
    """Write out/synthetic and out/real_train, each with crops/ and manifest.csv."""
    counts = {}
    with atomic_dir(out) as tmp:
        for name, root in (("synthetic", synthetic), ("real_train", real_train)):
            coco = read_coco(root / "coco.json", image_root=root)
            df = crop_dataset(root, coco, p, tmp / name, desc=f"crop {name}")
            counts[f"{name}_crops"] = float(len(df))
            counts[f"{name}_annotations"] = float(len(coco.annotations))
    return counts


@cli
def main() -> None:
    args = parse_paths("synthetic", "real_train", "out")

    def body(params, log):
        metrics = run(params.crop, args.synthetic, args.real_train, args.out)
        for name in ("synthetic", "real_train"):
            tiles = crop_grid_tiles(args.out / name, read_manifest(args.out / name))
            log.image(f"crops_{name}.png", grid(tiles, cols=8))
        return metrics

    execute("detection", "crop", "crop", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
