"""Params sections of the video domain."""

from __future__ import annotations

from typing import Any

VIDEO_SECTIONS: dict[str, type] = {}


def check_video(sections: dict[str, Any]) -> None:
    """Cross-key checks of the video sections."""
