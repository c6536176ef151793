"""Params profiles: a YAML overlay of params.yaml, applied as a DVC experiment.

    python -m pipeline.profile params.paper.yaml [--print] [-- extra `dvc exp run` arguments]

The overlay is merged into params.yaml and the result is validated first (bad keys or values stop here
with one line, exit 2). Then ``dvc exp run --set-param key=value ...`` runs with one ``--set-param`` per
leaf of the overlay, so the experiment records exactly what the profile changed; ``--print`` only
prints that command.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, cli
from pipeline.params import PARAMS_FILE, leaves, load_profile


def set_param_args(profile: Path, base: Path = PARAMS_FILE) -> list[str]:
    """``--set-param key=value`` arguments for every leaf of ``profile``, after validating the merge."""
    overlay, base_tree = load_profile(Path(profile), Path(base))
    return [arg for value in set_param_values(overlay, base_tree) for arg in ("--set-param", value)]


def set_param_values(overlay: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """``key=value`` Hydra overrides (``dvc exp run --set-param``) for every leaf of ``overlay``.

    Values are JSON, which the override grammar reads back as the same list/number/string; a key that
    ``base`` lacks gets Hydra's ``+`` (add) prefix, since DVC refuses to set an unknown key otherwise.
    """
    out = []
    for key, value in leaves(overlay).items():
        node: Any = base
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        out.append(f"{'+' if node is _MISSING else ''}{key}={json.dumps(value, separators=(',', ':'))}")
    return out


_MISSING = object()


@cli
def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    if not argv:
        raise PipelineError("usage: python -m pipeline.profile PROFILE.yaml [--print] [-- dvc exp run args]")
    cmd = ["dvc", "exp", "run", *set_param_args(Path(argv[0])), *extra]
    if "--print" in argv:
        print(shlex.join(cmd))
        return
    # this interpreter's dvc, and its `python` first on PATH for the stage commands
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    raise SystemExit(subprocess.run([sys.executable, "-m", *cmd], env=env).returncode)


if __name__ == "__main__":
    main()
