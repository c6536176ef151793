"""Refiner sweep: one branch per refiner config (refine → reinsert → its detectors), then evaluate + report.

    python -m pipeline.flows.sweep C_CP_S D_S_noVGG
    python -m pipeline.flows.sweep --grid '{"C_CP_S": {"losses.cyc_pixel": [5, 10]}}'

A grid derives new configs from an existing one (``C_CP_S__cyc_pixel5``, ``C_CP_S__cyc_pixel10``); they are
added to ``refine.configs`` as params overrides, so the DVC experiment records each derived config in full.
The sweep trains detectors on ``S``, ``R`` and each config's refined set, and ends with the comparison:
the ``report`` stage's folder and a table of mean test F1 per set as a Prefect artifact.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
from pathlib import Path
from typing import Any

import yaml
from prefect import flow
from prefect.artifacts import create_table_artifact

from pipeline.detection.compare import refiner_table, workspace_runs
from pipeline.domains import DOMAINS
from pipeline.errors import PipelineError
from pipeline.flows import dag
from pipeline.flows.common import Executor, flow_cli, orchestrate, run_plan
from pipeline.params import PARAMS_FILE, leaves


def _fmt(value: Any) -> str:
    return str(value).replace(".", "p").replace("-", "m")


def expand_grid(configs: dict[str, Any], grid: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, Any]]:
    """New refiner configs: every combination of the grid's values applied to its base config."""
    out: dict[str, dict[str, Any]] = {}
    for base, axes in grid.items():
        if base not in configs:
            raise PipelineError(f"grid: unknown refiner config {base!r} (known: {', '.join(sorted(configs))})")
        keys = list(axes)
        for combo in itertools.product(*(axes[k] if isinstance(axes[k], list) else [axes[k]] for k in keys)):
            cfg = copy.deepcopy(configs[base])
            for key, value in zip(keys, combo, strict=True):
                *head, last = key.split(".")
                node = cfg
                for part in head:
                    node = node.setdefault(part, {})
                node[last] = value
            name = base + "__" + "_".join(f"{k.split('.')[-1]}{_fmt(v)}" for k, v in zip(keys, combo, strict=True))
            out[name] = cfg
    return out


def sweep_overrides(root: Path, configs: list[str], grid: dict[str, dict[str, list[Any]]] | None,
                    seeds: list[int] | None) -> tuple[list[str], dict[str, Any]]:
    """The config names of the sweep and the params overrides that make the DAG train exactly those."""
    params = yaml.safe_load((root / PARAMS_FILE).read_text()) or {}
    known = params.get("refine", {}).get("configs", {})
    derived = expand_grid(known, grid or {})
    names = list(dict.fromkeys([*configs, *derived]))
    if not names:
        raise PipelineError("refiner sweep: give at least one config name or a grid")
    overrides: dict[str, Any] = {f"refine.configs.{n}.{k}": v for n, cfg in derived.items()
                                 for k, v in leaves(cfg).items()}
    overrides["refine.run"] = names
    overrides["train_detector.sets"] = ["S", "R", *names]
    if seeds:
        overrides["evaluate.seeds"] = list(seeds)
    return names, overrides


def branch_of(address: str, names: list[str]) -> str | None:
    """Which config's branch a stage belongs to: ``refine@X``, ``reinsert@X``, ``train_detector@X-<seed>``."""
    _, _, item = address.partition("@")
    for n in names:
        if item == n or item.startswith(f"{n}-") and item[len(n) + 1:].isdigit():
            return n
    return None


@flow(name="refiner-branch", flow_run_name="branch-{config}", log_prints=True)
def refiner_branch(root: str, config: str, stages: list[str], executor: Executor = "local",
                   share: bool = False) -> dict[str, str]:
    """One config's branch of the sweep, a subflow in the UI."""
    planned = [s for s in dag.plan(root, stages) if s.address in stages]
    return run_plan(Path(root), planned, executor, share)


def run_in_waves(root: Path, stages: list[dag.PlannedStage], names: list[str], executor: Executor,
                 share: bool) -> dict[str, str]:
    """Run the plan in waves: every config's ready branch stages as its subflow, then the shared stages whose
    upstream stages are done (``training_sets`` joins the branches' reinserts before their detectors)."""
    owner = {s.address: branch_of(s.address, names) for s in stages}
    done: dict[str, str] = {}
    while len(done) < len(stages):
        before = len(done)
        for n in names:
            ready: list[str] = []
            for s in stages:  # plan order: a branch stage may follow one of its own branch run this wave
                if owner[s.address] == n and s.address not in done and set(s.upstream) <= {*done, *ready}:
                    ready.append(s.address)
            if ready:
                done.update(refiner_branch(str(root), n, ready, executor, share))
        shared = [s for s in stages if owner[s.address] is None and s.address not in done]
        ready_shared: list[dag.PlannedStage] = []
        for s in shared:
            if set(s.upstream) <= {*done, *(x.address for x in ready_shared)}:
                ready_shared.append(s)
        done.update(run_plan(root, ready_shared, executor, share))
        if len(done) == before:
            left = [s.address for s in stages if s.address not in done]
            raise PipelineError(f"refiner sweep: no stage can run; left: {left}")
    return done


@flow(name="refiner-sweep", log_prints=True)
def refiner_sweep(configs: list[str] | None = None, grid: dict[str, dict[str, list[Any]]] | None = None,
                  seeds: list[int] | None = None, root: str = ".", overrides: dict[str, Any] | None = None,
                  exp_name: str | None = None, executor: Executor = "local", record: bool = True,
                  share: bool = False, jobs: int = 1, pool_jobs: int | None = None) -> list[dict[str, Any]]:
    """Train and compare refiner configs: shared stages, one branch per config, then evaluate and report.

    With ``jobs`` 1 the branches run one after another, each a subflow; with more, every stage whose upstream
    stages are done runs at once with others, up to ``jobs`` (``run_plan``'s scheduler, no subflows)."""
    root_path = dag.check_root(root)
    names, sweep = sweep_overrides(root_path, list(configs or []), grid, seeds)

    table: list[dict[str, Any]] = []

    def body(r: Path) -> dict[str, str]:
        planned = dag.plan(r, list(DOMAINS["detection"].final_stages))
        if jobs > 1 or executor == "pools" and (pool_jobs or 1) > 1:
            done = run_plan(r, planned, executor, share, jobs, pool_jobs)
        else:
            done = run_in_waves(r, planned, names, executor, share)
        # the runs behind the sweep's results, read before the workspace's params are put back
        runs, _ = workspace_runs("detection", r)
        table.extend(refiner_table(runs, stages=[f"train_detector@{s}" for s in ["S", "R", *names]]))
        return done

    orchestrate("detection", str(root_path), {**sweep, **(overrides or {})}, exp_name, record, body)
    create_table_artifact(table, key="refiner-sweep", description="mean test F1 per training set (MLflow runs)")
    print(json.dumps(table, indent=1))
    return table


def _extra(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("configs", nargs="*", help="refiner config names from refine.configs")
    ap.add_argument("--grid", type=json.loads, default=None, help='JSON: {"C_CP_S": {"losses.cyc_pixel": [5, 10]}}')
    ap.add_argument("--seeds", type=int, nargs="+", default=None)


main = flow_cli(refiner_sweep, "Train and compare refiner configs as a Prefect flow.", _extra)

if __name__ == "__main__":
    main()
