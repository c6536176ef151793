"""Params sections of the audio domain."""

from __future__ import annotations

from typing import Any

AUDIO_SECTIONS: dict[str, type] = {}


def check_audio(sections: dict[str, Any]) -> None:
    """Cross-key checks of the audio sections."""
