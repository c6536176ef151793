"""The UCF-101-style folder loader on small videos this test writes with PyAV."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.video.ucf import clips_of, decode, list_videos, load_folder, split_groups

FPS_IN, W, H, BORDER = 25, 64, 48, 8


def write_video(path: Path, seconds: float, fps: int = FPS_IN, codec: str = "mpeg4") -> None:
    """Grey frames whose brightness encodes the frame index (5 levels per frame), with white side bands
    that a centre crop must remove."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.bit_rate = 4_000_000
        for i in range(int(seconds * fps)):
            frame = np.full((H, W, 3), min(5 * i, 250), np.uint8)
            frame[:, :BORDER] = frame[:, -BORDER:] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_decode_samples_at_the_set_rate_and_centre_crops(tmp_path):
    f = tmp_path / "clip.avi"
    write_video(f, seconds=2.0)
    x = decode(f, fps=5.0, size=16, channels=1)
    assert x.shape == (10, 1, 16, 16) and x.dtype == np.uint8  # 2 s at 5 fps
    # every fifth source frame: brightness 0, 25, 50, ... (lossy codec: a few levels of slack)
    levels = x.reshape(10, -1).mean(1)
    assert np.abs(levels - 25 * np.arange(10)).max() < 6
    # the 48x48 centre crop drops the white side bands
    assert x[3].max() < 120
    rgb = decode(f, fps=10.0, size=24, channels=3)
    assert rgb.shape == (20, 3, 24, 24)
    slow = decode(f, fps=100.0, size=16, channels=1)  # faster than the video: every frame once
    assert len(slow) == 50


def test_folder_is_split_by_group_into_clips(tmp_path):
    for c in ("Jump", "Run"):
        for g in (1, 2, 3):
            write_video(tmp_path / c / f"v_{c}_g{g:02d}_c01.avi", seconds=1.8)
        write_video(tmp_path / c / f"v_{c}_g01_c02.avi", seconds=1.8)
    write_video(tmp_path / "Run" / "v_Run_g01_c03.avi", seconds=0.4)  # too short for one clip
    (tmp_path / "Run" / "notes.txt").write_text("not a video")
    videos, classes = list_videos(tmp_path)
    assert classes == ["Jump", "Run"] and len(videos) == 9
    where = split_groups(videos, 0.3, seed=0)
    for c in classes:
        sides = {where[v.group] for v in videos if v.group.startswith(c)}
        assert sides == {"train", "test"}
    sets, names, counts = load_folder(tmp_path, fps=5.0, size=16, frames=4, channels=1, per_video=2, test=0.3,
                                      seed=0)
    assert names == classes and counts == {"videos": 9, "too_short": 1}
    n_total = len(sets["train"][0]) + len(sets["test"][0])
    assert n_total == 8 * 2  # 9 s of 1.8 s videos -> 9 frames at 5 fps -> 2 clips of 4 each; the short one none
    assert sets["train"][0].shape[1:] == (1, 4, 16, 16) and set(sets["test"][1]) == {0, 1}


def test_clips_are_consecutive_frames():
    frames = np.arange(10)[:, None, None, None] * np.ones((10, 1, 2, 2), np.uint8)
    clips = clips_of(frames, 4, per_video=5)
    assert len(clips) == 2 and clips[1].shape == (1, 4, 2, 2) and clips[1][0, :, 0, 0].tolist() == [4, 5, 6, 7]


def test_undecodable_and_missing_videos_are_named(tmp_path):
    bad = tmp_path / "Jump" / "broken.avi"
    bad.parent.mkdir()
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 20)
    with pytest.raises(PipelineError, match=r"broken.avi: undecodable video"):
        decode(bad, 5.0, 16)
    with pytest.raises(PipelineError, match=r"broken.avi: undecodable video"):
        load_folder(tmp_path, 5.0, 16, 4, 1, 1, 0.3, 0)
    with pytest.raises(PipelineError, match="no <class>/ folders"):
        list_videos(tmp_path / "nowhere")
    (tmp_path / "Empty" / "x.txt").parent.mkdir()
    bad.unlink()
    with pytest.raises(PipelineError, match="no video files"):
        list_videos(tmp_path)
