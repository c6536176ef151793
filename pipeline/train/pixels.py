"""uint8 pixels ↔ [-1, 1], the range of the GANs' tanh outputs and of the classifiers that judge them.

Layout stays the caller's (faces are stored H, W, C; clips and digit images channels first). NumPy only:
the prepare stages import the domains' data modules and must not pay for torch.
"""

from __future__ import annotations

import numpy as np


def to_unit(x: np.ndarray) -> np.ndarray:
    """uint8 → C-contiguous float32 in [-1, 1]."""
    return np.ascontiguousarray(x, dtype=np.float32) / 127.5 - 1.0


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] → uint8: scaled in float32, rounded half to even, clipped."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
