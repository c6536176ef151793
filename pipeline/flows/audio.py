"""The audio → image domain as a Prefect flow: audio_synthesize → audio_features → audio_train_gan@<variant>
→ audio_evaluate.

    python -m pipeline.flows.audio [--set audio_train_gan.epochs=20 ...] [--executor pools]
"""

from __future__ import annotations

from pipeline.flows.common import flow_cli, pipeline_flow

FINAL_STAGES = ["audio_evaluate"]

audio = pipeline_flow("audio", FINAL_STAGES,
                      "Spoken digits (eSpeak NG) paired with MNIST, sound features, one GAN per variant, the evaluator's tables.")

main = flow_cli(audio, "Run the audio DAG as a Prefect flow.")

if __name__ == "__main__":
    main()
