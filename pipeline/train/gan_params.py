"""What every ``<domain>_train_gan`` params section shares.

Such a section is a foreach over ``run``: its GanVariant fields (the domain's own dataclass, which the
section inherits) are the defaults that ``variants.<name>`` override per variant. The shared choices, the
``run``/``variants`` pair and resolving a variant live here; each domain declares its other fields itself,
since their defaults differ and their order is that of the variant settings saved with each generator.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pipeline.errors import PipelineError
from pipeline.fields import DISTINCT, _c, parse_section

LOSSES = ("bce", "hinge", "wgan-gp")
OPTIMIZERS = ("adam", "sgd")
EMA_DECAY = (lambda v: 0 <= v < 1, "in [0, 1)")
IMAGE_AUGMENTS = ("color", "translation", "cutout")  # DiffAugment policies (pipeline.train.augment) for images and clips
WINDOW_AUGMENTS = ("jitter", "scale", "shift")       # ... and for time-series windows


def augment_policies(allowed: tuple[str, ...]) -> Any:
    """The ``augment`` field: DiffAugment policies on D's inputs, distinct names from ``allowed``; none unless set."""
    return _c([], lambda v: len(set(v)) == len(v) and set(v) <= set(allowed),
              f"(distinct names from {', '.join(allowed)})")


def variant_names(default: str) -> Any:
    """The ``run`` field: the variants to train, non-empty without repeats; ``default`` alone unless set."""
    return _c([default], *DISTINCT)


def variant_overrides(default: str) -> Any:
    """The ``variants`` field: each variant's overrides of the section's values; ``default`` overrides none."""
    return _c({default: {}})


class GanSection:
    """Mixin of the section dataclasses (which have ``run`` and ``variants`` fields): resolves
    ``variants.<name>`` against the section's own values."""

    key: ClassVar[str]  # the section's name in params.yaml, e.g. "sensor_train_gan"
    variant_cls: ClassVar[type]  # the domain's GanVariant

    def variant(self, name: str) -> Any:
        """Variant ``name``: the section's values of ``variant_cls``'s fields overridden by ``variants.<name>``,
        validated like any section; errors name ``<key>.variants.<name>.<field>``, and an unknown name lists
        the known ones."""
        if name not in self.variants:
            raise PipelineError(f"{self.key}.run: unknown variant {name!r} (known: {', '.join(sorted(self.variants))})")
        cfg = self.variants[name] or {}
        if not isinstance(cfg, dict):
            raise PipelineError(f"{self.key}.variants.{name}: expected a mapping, got {cfg!r}")
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(self.variant_cls)}
        return parse_section(self.variant_cls, {**shared, **cfg}, f"{self.key}.variants.{name}")

    def run_variants(self) -> dict[str, Any]:
        """Every variant in ``run``, resolved and validated (the cross-key check of the section). The
        variants not in ``run`` are validated too, so a typo in one stops at load, not when a profile or a
        sweep first trains it."""
        for name in self.variants:
            if name not in self.run:
                self.variant(name)
        return {name: self.variant(name) for name in self.run}
