"""The anime domain as a Prefect flow: anime_prepare → anime_train_gan@<variant> → anime_classify.

    python -m pipeline.flows.anime [--set anime_train_gan.epochs=100 ...] [--executor pools]
"""

from __future__ import annotations

from pipeline.flows.common import flow_cli, pipeline_flow

FINAL_STAGES = ["anime_classify"]

anime = pipeline_flow("anime", FINAL_STAGES,
                      "Faces (the procedural stand-in or a folder), one DCGAN per variant, the anime-face detector's and the attribute classifier's verdict on each.")

main = flow_cli(anime, "Run the anime DAG as a Prefect flow.")

if __name__ == "__main__":
    main()
