"""Detector predictions on disk: one JSON per (detector, split), boxes xyxy in source-image pixels.

``{"images": [{"file": path, "gt": [[x1,y1,x2,y2], ...], "boxes": [...], "scores": [...]}, ...]}`` with
every detection kept (no confidence cut), so thresholds and AP can be recomputed from the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    import torch


def predictions_json(samples: Sequence[Any], preds: Sequence[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Samples (with ``image`` and ``boxes``) and their predictions -> the JSON layout above."""
    return {"images": [{"file": str(s.image), "gt": np.round(s.boxes, 2).tolist(),
                        "boxes": [[round(float(v), 2) for v in b] for b in p["boxes"]],
                        "scores": [round(float(v), 5) for v in p["scores"]]} for s, p in zip(samples, preds)]}


def read_predictions(path: Path) -> tuple[list[str], list[dict[str, torch.Tensor]], list[torch.Tensor]]:
    """(image files, predictions as tensors, gt boxes) from a predictions JSON."""
    try:
        images = json.loads(Path(path).read_text())["images"]
    except FileNotFoundError:
        raise PipelineError(f"{path}: predictions file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise PipelineError(f"{path}: not a predictions file (needs an 'images' list)") from None
    import torch  # here, not at import: the plotting stages that import this module only read files

    files = [im["file"] for im in images]
    preds = [{"boxes": torch.tensor(im["boxes"], dtype=torch.float32).reshape(-1, 4),
              "scores": torch.tensor(im["scores"], dtype=torch.float32)} for im in images]
    gts = [torch.tensor(im["gt"], dtype=torch.float32).reshape(-1, 4) for im in images]
    return files, preds, gts
