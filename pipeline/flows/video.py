"""The video domain as a Prefect flow: video_prepare → video_train_gan@<variant> → video_classify.

    python -m pipeline.flows.video [--set video_train_gan.epochs=100 ...] [--executor pools]
"""

from __future__ import annotations

from pipeline.flows.common import flow_cli, pipeline_flow

FINAL_STAGES = ["video_classify"]

video = pipeline_flow("video", FINAL_STAGES,
                      "Clips (Moving MNIST or a UCF-101 folder), one spatiotemporal GAN per variant, a video classifier's verdict.")

main = flow_cli(video, "Run the video DAG as a Prefect flow.")

if __name__ == "__main__":
    main()
