"""The shard checks of a distributed render, on stand-in shard folders (no Blender): a merge takes exactly
the N shards of one split of these specs, or refuses with one line naming what is wrong. Real renders of
shards, merged and compared byte for byte with one render, are in tests/smoke/test_render_shards.py."""

import json
import shutil

import pytest

from pipeline.detection.render.dataset import split
from pipeline.detection.render.shards import Shard, parse_shard, read_shards, spec_hash
from pipeline.errors import PipelineError

SPECS = [{"index": i, "render": {"samples": 2}} for i in range(5)]


def fake_shards(root, specs=SPECS, n=2, stage="render", device="auto"):
    """Shard folders as ``write_shard`` leaves them (worker outputs stood in by empty files)."""
    digest = spec_hash(stage, specs, device)
    for k, part in enumerate(split(specs, n)):
        d = root / str(k)
        for sub in ("rgb", "id", "meta"):
            (d / sub).mkdir(parents=True)
        for s in part:
            name = f"{s['index']:06d}"
            for f in (f"rgb/{name}.png", f"id/{name}.png", f"meta/{name}.json"):
                (d / f).write_bytes(b"")
        (d / "shard.json").write_text(json.dumps({"stage": stage, "k": k, "n": n, "hash": digest,
                                                  "indices": [s["index"] for s in part]}))
    return root


def test_parse_shard():
    assert parse_shard("1/4") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(PipelineError, match="expected K/N with 0 <= K < N"):
            parse_shard(bad)


def test_split_is_contiguous_and_covers_every_spec():
    for n in range(1, 6):
        parts = split(SPECS, n)
        assert len(parts) == n and [s for p in parts for s in p] == SPECS and all(parts)


def test_merge_finds_every_image_in_its_shard(tmp_path):
    where = read_shards("render", SPECS, fake_shards(tmp_path), "auto")
    assert where == {0: tmp_path / "0", 1: tmp_path / "0", 2: tmp_path / "1", 3: tmp_path / "1", 4: tmp_path / "1"}


@pytest.mark.parametrize("damage, message", [
    (lambda d: shutil.rmtree(d / "1"), r"shard 1/2 missing \(1 of 2 there\)"),
    (lambda d: shutil.copytree(d / "0", d / "copy"), r"shard 0/2 is there twice: .*/0 and .*/copy"),
    (lambda d: (d / "1/rgb/000004.png").unlink(), r"/1: rgb/000004.png missing \(an incomplete shard\)"),
    (lambda d: (d / "stray").mkdir(), r"/stray: not a render shard \(shard.json missing"),
    (lambda d: shutil.move(fake_shards(d.parent / "three", n=3) / "2", d / "2"),
     r"shards of different splits \(N = 2, 3\)"),
])
def test_merge_refuses_a_missing_duplicated_or_incomplete_shard(tmp_path, damage, message):
    fake_shards(tmp_path / "s")
    damage(tmp_path / "s")
    with pytest.raises(PipelineError, match=message) as err:
        read_shards("render", SPECS, tmp_path / "s", "auto")
    assert "\n" not in str(err.value)


def test_merge_refuses_shards_of_other_params_code_or_stage(tmp_path):
    fake_shards(tmp_path)
    other = [{**s, "render": {"samples": 3}} for s in SPECS]
    with pytest.raises(PipelineError, match=r"/0: rendered with other params or code than this merge"):
        read_shards("render", other, tmp_path, "auto")
    with pytest.raises(PipelineError, match=r"/0: rendered with other params or code"):
        read_shards("render", SPECS, tmp_path, "cpu")  # another Cycles device may give other pixels
    with pytest.raises(PipelineError, match=r"/0: a shard of stage 'render', not of 'real'"):
        read_shards("real", SPECS, tmp_path, "auto")
    with pytest.raises(PipelineError, match=r"nowhere: no such folder"):
        read_shards("render", SPECS, tmp_path / "nowhere", "auto")


def test_spec_hash_reads_referenced_files_by_content_not_by_place(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "elsewhere/b.png"
    b.parent.mkdir()
    a.write_bytes(b"plate")
    b.write_bytes(b"plate")
    spec = {"index": 0, "background": str(a)}
    assert spec_hash("render", [spec], "auto") == spec_hash("render", [{**spec, "background": str(b)}], "auto")
    b.write_bytes(b"another plate")
    assert spec_hash("render", [spec], "auto") != spec_hash("render", [{**spec, "background": str(b)}], "auto")
