"""Stage ``refine@<config>``: refine every synthetic crop with the named refiner config."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError, cli
from pipeline.io.atomic import atomic_dir
from pipeline.io.images import grid, load_rgb
from pipeline.io.manifest import read_manifest
from pipeline.nn.refiners import build_refiner
from pipeline.params import RefineParams
from pipeline.refining import refine_folder
from pipeline.stage import execute, parse_paths


def config_of(p: RefineParams, name: str) -> dict:
    if name not in p.configs:
        raise PipelineError(f"refine.run: unknown config {name!r} (known: {', '.join(sorted(p.configs))})")
    return p.configs[name]


def run(p: RefineParams, name: str, crops: Path, out: Path) -> dict[str, float]:
    """Refine crops/synthetic into ``out`` (crops/ + manifest.csv)."""
    model = build_refiner(name, config_of(p, name))
    manifest = read_manifest(crops / "synthetic")
    with atomic_dir(out) as tmp:
        n = refine_folder(model, crops / "synthetic", manifest, tmp)
    return {"refined": float(n)}


@cli
def main() -> None:
    args = parse_paths("crops", "out", extra=("name",))

    def body(params, log):
        metrics = run(params.refine, args.name, args.crops, args.out)
        files = list(read_manifest(args.out)["crop_file"].head(8))
        pairs = [load_rgb(d / f) for f in files for d in (args.crops / "synthetic", args.out)]
        log.image("synthetic_to_refined.png", grid(pairs, cols=4))
        return metrics

    execute("detection", f"refine@{args.name}", lambda p: config_of(p.refine, args.name), body, args.metrics)


if __name__ == "__main__":
    main()
