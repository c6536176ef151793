"""Params sections of the anime domain."""

from __future__ import annotations

from typing import Any

ANIME_SECTIONS: dict[str, type] = {}


def check_anime(sections: dict[str, Any]) -> None:
    """Cross-key checks of the anime sections."""
