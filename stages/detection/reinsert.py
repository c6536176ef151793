"""Stage ``reinsert@<config>``: paste refined crops back into the synthetic images (seed Algorithm 6),
blended by each person's feathered instance mask, giving the refined dataset S+."""

from __future__ import annotations

from pathlib import Path

from pipeline.detection.crops.dataset import reinsert_dataset
from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.coco import read_coco
from pipeline.detection.crops.manifest import read_manifest
from pipeline.detection.params import ReinsertParams
from pipeline.stage import execute, parse_paths
from pipeline.detection.plots import annotated_grid


def run(p: ReinsertParams, dataset: Path, crops: Path, refined: Path, out: Path) -> dict[str, float]:
    coco = read_coco(dataset / "coco.json", image_root=dataset)
    manifest = read_manifest(refined)
    read_manifest(crops)
    with atomic_dir(out) as tmp:
        n = reinsert_dataset(dataset, coco, crops, manifest, refined, p, tmp)
    return {"images": float(len(coco.images)), "reinserted": float(n)}


@cli
def main() -> None:
    args = parse_paths("dataset", "crops", "refined", "out", extra=("name",))

    def body(params, log):
        metrics = run(params.reinsert, args.dataset, args.crops, args.refined, args.out)
        log.image("reinserted_grid.png", annotated_grid(args.out, read_coco(args.out / "coco.json")))
        return metrics

    execute("detection", f"reinsert@{args.name}", "reinsert", body, args.metrics, args.headline)


if __name__ == "__main__":
    main()
