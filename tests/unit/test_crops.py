import random

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, gaussian_filter

from pipeline.detection.crops.geometry import (CropGeom, crop, crop_affine, crop_affine_inv, crop_geometry, crop_mask,
                            radial_distance, reinsert)

H, W = 336, 448
SIZE, OFFSET = 128, 0.3
CENTRE = np.array([W / 2, H / 2])
HEADS = {5: (120.0, 95.0), 7: (165.0, 72.0), 9: (350.0, 270.0)}


def _pt(m, xy):
    return (m @ np.array([xy[0], xy[1], 1.0]))[:2]


def _u(head):
    d = CENTRE - np.asarray(head)
    return d / np.linalg.norm(d)


def _mask(heads=HEADS, length=55.0, radius=14.0):
    """Capsule-shaped people running from each head toward the image centre."""
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    m = np.zeros((H, W), np.int32)
    for ann, head in heads.items():
        u = _u(head)
        t = np.clip((xx - head[0]) * u[0] + (yy - head[1]) * u[1], 0, length)
        d = np.hypot(xx - head[0] - t * u[0], yy - head[1] - t * u[1])
        m[(d <= radius) & (m == 0)] = ann
    return m


def _texture(seed=0, smooth=0.0):
    img = np.random.default_rng(seed).uniform(0, 255, (H, W, 3))
    if smooth:
        img = gaussian_filter(img, (smooth, smooth, 0))
        img = (img - img.min()) / (img.max() - img.min()) * 50 + np.array([30.0, 180.0, 70.0])  # far from grey
    return np.rint(img).astype(np.uint8)


def _items(img, mask, refine=lambda ann, c: c):
    out = []
    for ann, head in HEADS.items():
        g = crop_geometry(head, (W, H), SIZE, OFFSET)
        c = crop(img, g)
        out.append((ann, g, c, refine(ann, c)))
    return out


QUADRANT_HEADS = [(100.0, 80.0), (350.0, 90.0), (90.0, 300.0), (400.0, 260.0), (224.0, 20.0), (10.0, 168.0)]


@pytest.mark.parametrize("head", QUADRANT_HEADS)
def test_head_lands_above_centre_and_outward_is_up(head):
    g = crop_geometry(head, (W, H), SIZE, OFFSET)
    inv = crop_affine_inv(g)
    np.testing.assert_allclose(crop_affine(g) @ inv, np.eye(3), atol=1e-9)
    hx, hy = _pt(inv, head)
    assert abs(hx - SIZE / 2) < 0.01 and abs(hy - (SIZE / 2 - OFFSET * SIZE)) < 0.01
    u = _u(head)
    ox, oy = _pt(inv, np.asarray(head) - 20 * u)  # further from the image centre than the head
    ix, iy = _pt(inv, np.asarray(head) + 20 * u)  # toward the centre (the body)
    assert oy < hy - 19.9 and abs(ox - hx) < 1e-6
    assert iy > hy + 19.9 and abs(ix - hx) < 1e-6


def test_head_at_centre_uses_image_down():
    g = crop_geometry((W / 2, H / 2), (W, H), 64, 0.25)
    assert g.angle == 0.0 and (g.cx, g.cy) == (W / 2, H / 2 + 16)


@pytest.mark.parametrize("head", QUADRANT_HEADS[:4])
def test_crop_samples_source_at_affine_position(head):
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    coords = np.stack([xx, yy], axis=-1)  # each pixel holds its own centre coordinate
    g = crop_geometry(head, (W, H), 64, OFFSET)
    c = crop(coords, g)
    assert c.shape == (64, 64, 2) and c.dtype == coords.dtype
    qy, qx = np.mgrid[0:64, 0:64] + 0.5
    expect = np.einsum("ij,jyx->yxi", crop_affine(g)[:2], np.stack([qx, qy, np.ones_like(qx)]))
    np.testing.assert_allclose(c, expect, atol=1e-6)


@pytest.mark.parametrize("head", QUADRANT_HEADS[:4])
def test_bright_spot_outward_of_head_appears_above_it(head):
    p = np.asarray(head) - 15 * _u(head)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    img = np.rint(np.stack([np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / 8)] * 3, -1) * 255).astype(np.uint8)
    g = crop_geometry(head, (W, H), SIZE, OFFSET)
    c = crop(img, g)
    assert c.dtype == np.uint8 and c.shape == (SIZE, SIZE, 3)
    w = c[..., 0].astype(float)
    qy, qx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    centroid = np.array([(w * qx).sum(), (w * qy).sum()]) / w.sum()
    np.testing.assert_allclose(centroid, _pt(crop_affine_inv(g), p), atol=0.15)
    assert centroid[1] < SIZE / 2 - OFFSET * SIZE - 14


def test_crop_mask_marks_own_person_only():
    mask = _mask()
    g = crop_geometry(HEADS[5], (W, H), SIZE, OFFSET)
    m = crop_mask(mask, g, 5)
    assert m.dtype == bool and m.shape == (SIZE, SIZE)
    assert m[int(SIZE / 2 - OFFSET * SIZE) + 3, SIZE // 2]  # just below the head, on the body
    assert not m[2, 2] and abs(m.sum() - (mask == 5).sum()) < 0.05 * (mask == 5).sum()
    assert crop_mask(mask, g, 7).any() and not (crop_mask(mask, g, 7) & m).any()


def test_overlapping_crops_round_trip_exactly():
    img, mask = _texture(), _mask()
    items = _items(img, mask)
    inv5 = crop_affine_inv(items[0][1])
    assert np.all(np.abs(_pt(inv5, (items[1][1].cx, items[1][1].cy)) - SIZE / 2) < SIZE / 2)  # 5 and 7 overlap
    out = reinsert(img, mask, items, feather=4)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out, img)


def test_colour_change_only_inside_own_mask_and_matches_paste_in_interior():
    img, mask = _texture(smooth=6.0), _mask()
    items = _items(img, mask, lambda ann, c: 255 - c if ann == 5 else c)
    out = reinsert(img, mask, items, feather=4)
    own = mask == 5
    assert np.array_equal(out[~own], img[~own])
    g5 = items[0][1]
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    q = np.einsum("ij,jyx->iyx", crop_affine_inv(g5)[:2], np.stack([xx, yy, np.ones_like(xx)]))
    in_fp = (np.minimum(q[0], q[1]) > 0) & (np.maximum(q[0], q[1]) < SIZE)
    assert (in_fp & (mask == 7)).any()  # crop 5 covers person 7, who must stay untouched
    change = np.abs(out.astype(int) - img).mean(axis=-1)
    edge = own & ~binary_erosion(own) & in_fp
    assert change[own].mean() > 50 and change[edge].mean() < 0.5 * change[binary_erosion(own, iterations=5)].mean()
    interior = binary_erosion(own, iterations=6) & in_fp
    assert interior.sum() > 300
    paste = reinsert(img, mask, items, feather=4, mode="paste")
    diff = np.abs(out[interior].astype(int) - paste[interior])
    assert diff.mean() < 1.5 and diff.max() <= 6
    assert np.abs(paste[interior].astype(int) - (255 - img[interior].astype(int))).max() <= 6


def test_item_order_does_not_matter():
    img, mask = _texture(1), _mask()
    items = _items(img, mask, lambda ann, c: np.roll(255 - c, ann, axis=1))
    for mode in ("residual", "paste"):
        ref = reinsert(img, mask, items, feather=3, mode=mode)
        assert not np.array_equal(ref, img)
        for seed in range(3):
            shuffled = items[:]
            random.Random(seed).shuffle(shuffled)
            assert np.array_equal(reinsert(img, mask, shuffled, feather=3, mode=mode), ref)


@pytest.mark.parametrize("head", [(3.0, 4.0), (W - 2.0, H - 1.0), (W - 1.0, 2.0), (1.0, H - 3.0)])
def test_crop_at_image_corner(head):
    img = _texture(2)
    mask = np.zeros((H, W), np.int32)
    mask[:40, :40] = mask[-40:, -40:] = mask[:40, -40:] = mask[-40:, :40] = 3
    g = crop_geometry(head, (W, H), SIZE, OFFSET)
    c = crop(img, g)
    assert c.shape == (SIZE, SIZE, 3) and crop_mask(mask, g, 3).any()
    out = reinsert(img, mask, [(3, g, c, 255 - c)], feather=4)
    assert np.array_equal(out[mask != 3], img[mask != 3]) and not np.array_equal(out, img)


def test_feather_zero_is_hard_and_feather_ramps_inward():
    img, mask = _texture(3), _mask()
    assert np.array_equal(reinsert(img, mask, _items(img, mask), feather=0), img)
    body = np.asarray(HEADS[9]) + 27 * _u(HEADS[9])
    g = CropGeom(body[0], body[1], 0.3, 128)  # covers all of person 9
    items = [(9, g, crop(img, g), np.full((128, 128, 3), 200, np.uint8))]
    own = mask == 9
    hard = reinsert(img, mask, items, feather=0, mode="paste")
    assert np.all(hard[own] == 200) and np.array_equal(hard[~own], img[~own])
    soft = reinsert(img, mask, items, feather=4, mode="paste")
    edge = own & ~binary_erosion(own)
    deep = binary_erosion(own, iterations=5)
    assert np.all(soft[deep] == 200) and not np.any(np.all(soft[edge] == 200, axis=-1))


def test_only_crop_footprint_is_processed():
    img = _texture(4)
    mask = np.full((H, W), 3, np.int32)
    g = crop_geometry((200.0, 100.0), (W, H), 32, 0.0)
    c = crop(img, g)
    out = reinsert(img, mask, [(3, g, c, 255 - c)], feather=0)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    far = np.hypot(xx - g.cx, yy - g.cy) > 32 * 0.71
    near = np.hypot(xx - g.cx, yy - g.cy) < 15
    assert np.array_equal(out[far], img[far])
    assert np.abs(out[near].astype(int) - img[near]).mean() > 50
    soft = np.abs(reinsert(img, mask, [(3, g, c, 255 - c)], feather=4).astype(int) - img).mean(axis=-1)
    q = np.einsum("ij,jyx->iyx", crop_affine_inv(g)[:2], np.stack([xx, yy, np.ones_like(xx)]))
    border = np.minimum(np.minimum(q[0], q[1]), np.minimum(32 - q[0], 32 - q[1]))  # px inside the crop edge
    assert soft[(border > 0) & (border < 1)].mean() < 0.4 * soft[border > 4].mean()
    assert np.array_equal(soft[far], np.zeros(far.sum())) and soft[border > 4].mean() > 50


def test_radial_distance_and_geom_dict():
    assert radial_distance((W / 2, H / 2), (W, H)) == 0.0
    assert radial_distance((W / 2, 0.0), (W, H)) == pytest.approx(1.0)
    assert radial_distance((0.0, 0.0), (W, H)) == pytest.approx(np.hypot(W, H) / H)
    g = crop_geometry((100.0, 80.0), (W, H), 96, 0.3)
    d = g.to_dict()
    assert set(d) == {"cx", "cy", "angle", "size"} and isinstance(d["size"], int)
    assert CropGeom.from_dict(d) == g


def test_reinsert_rejects_bad_input():
    img, mask = _texture(), _mask()
    items = _items(img, mask)
    with pytest.raises(ValueError):
        reinsert(img, mask, items, 4, mode="blend")
    with pytest.raises(ValueError):
        reinsert(img, mask, items + items[:1], 4)
    with pytest.raises(ValueError):
        reinsert(img, mask, [(5, items[0][1], items[0][2], items[0][3][:64])], 4)


def test_the_crop_manifest_is_read_by_its_schema(tmp_path):
    import re

    import pandas as pd

    from pipeline.detection.crops.manifest import read_manifest, write_manifest
    from pipeline.errors import PipelineError

    (tmp_path / "crops").mkdir()
    (tmp_path / "crops/a.png").write_bytes(b"")
    row = {"crop_file": "crops/a.png", "source_image": "images/000001.png", "image_id": 1, "ann_id": 3,
           "cx": 10.5, "cy": 20.25, "angle": -0.5, "size": 128}
    written = write_manifest(tmp_path, [row])
    back = read_manifest(tmp_path)
    assert back.to_dict("records") == written and str(back["ann_id"].dtype) == "int64"
    text = (tmp_path / "manifest.csv").read_text()
    # the csv writer gives the bytes pandas' to_csv(float_format="%.6f") gave before it
    assert text == pd.DataFrame([row]).to_csv(index=False, float_format="%.6f")
    for bad, message in [(text.replace("128", "big"), "row 2 column 'size': Input should be a valid integer"),
                         (text.replace("10.500000", "nan"), "row 2 column 'cx': Input should be a finite number"),
                         (text.replace(",128", ""), "row 2 has fewer fields than the header (no 'size')"),
                         (text.replace("crops/a.png", "../a.png"), "row 2 crop_file '../a.png' points outside"),
                         (text.replace("crops/a.png", "crops/b.png"), "crop file " + str(tmp_path / "crops/b.png"))]:
        (tmp_path / "manifest.csv").write_text(bad)
        with pytest.raises(PipelineError, match=re.escape(message)):
            read_manifest(tmp_path)
    (tmp_path / "manifest.csv").unlink()
    with pytest.raises(PipelineError, match="manifest.csv: crop manifest not found"):
        read_manifest(tmp_path)
