"""``python -m pipeline.flows <pipeline> [--set KEY=VALUE ...] [--executor pools] [--jobs N]``: run one
pipeline's flow once, here (the pipelines are those of ``pipeline.domains``; ``--help`` after the name lists
the options)."""

from __future__ import annotations

import sys

from pipeline.domains import DOMAINS
from pipeline.errors import PipelineError, cli


@cli
def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in DOMAINS:
        raise PipelineError(f"usage: python -m pipeline.flows PIPELINE [options]; PIPELINE is one of "
                            f"{', '.join(DOMAINS)} (got {name!r})")
    from pipeline.flows.common import flow_cli
    from pipeline.flows.pipelines import FLOWS

    del sys.argv[1]
    flow_cli(FLOWS[name], f"Run the {name} DAG as a Prefect flow.", prog=f"python -m pipeline.flows {name}")()


if __name__ == "__main__":
    main()
