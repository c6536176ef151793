"""Anime domain: procedural faces, the folder loader, the detector wrapper, networks, a GAN run, metrics."""

import ctypes

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.anime.data import folder_labels, load_face, load_source, read_prepared, split, to_uint8, to_unit, \
    write_prepared
from pipeline.anime.face_detector import _Imaging, detect, detection_stats
from pipeline.anime.evaluation import diversity
from pipeline.anime.faces import ATTRIBUTES, HAIR, draw_face, draw_faces
from pipeline.anime.gan import FixedLatents, generate, interpolation, progress_strip, train
from pipeline.anime.nets import AttributeClassifier, Discriminator64, Generator64
from pipeline.anime.params import AnimeTrainGanParams
from pipeline.errors import PipelineError
from pipeline.metrics.generative import ms_ssim
from pipeline.params import parse_params


def test_procedural_faces_are_deterministic_per_seed_and_index():
    a, attrs_a = draw_face(0, 5)
    b, attrs_b = draw_face(0, 5)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and attrs_a == attrs_b
    assert not np.array_equal(a, draw_face(1, 5)[0]) and not np.array_equal(a, draw_face(0, 6)[0])
    x, attrs = draw_faces(0, 7)
    assert x.shape == (7, 64, 64, 3) and np.array_equal(x[5], a) and attrs[5]["hair"] == attrs_a.hair
    assert set(attrs[0]) == set(ATTRIBUTES)


def test_procedural_hair_labels_match_the_drawn_hair():
    # the top rows under the crown are hair: their mean colour is nearest to the labelled base colour
    x, attrs = draw_faces(3, 60)
    assert {a["hair"] for a in attrs} == set(HAIR)
    base = np.array(list(HAIR.values()), dtype=float)
    hits = 0
    for face, a in zip(x, attrs, strict=True):
        patch = face[8:12, 26:38].reshape(-1, 3).astype(float).mean(0)
        hits += list(HAIR)[int(np.argmin(((base * 0.9 - patch) ** 2).sum(1)))] == a["hair"]
    assert hits / len(x) > 0.8


def test_detector_finds_a_stand_in_face_and_not_noise():
    face, _ = draw_face(0, 0)
    found = detect(face)
    assert len(found) == 1 and found[0].likelihood > 0.9
    x, y, w, h = found[0].box
    assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64 and 16 <= w <= 48  # the face, in 64-px coordinates
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert detect(noise) == []
    assert detect(face, upscale=1) == []  # the face (28 px) is below its smallest window (42.6 px): why ×2
    stats = detection_stats(np.stack([face, noise, face]))
    assert stats["detection_rate"] == pytest.approx(2 / 3) and stats["mean_likelihood_detected"] > 0.9
    assert stats["mean_likelihood_all"] == pytest.approx(stats["mean_likelihood_detected"] * 2 / 3)


def test_imaging_struct_has_the_offsets_the_extension_reads():
    # offsets read by animeface's _nvxs.detect (x86-64 disassembly): mode 0x0, xsize 0x14, ysize 0x18, image 0x38
    assert (_Imaging.mode.offset, _Imaging.xsize.offset, _Imaging.ysize.offset, _Imaging.image.offset) == (
        0, 0x14, 0x18, 0x38)
    im = _Imaging(b"RGB")
    assert ctypes.c_void_p.from_address(id(im) + 16).value == ctypes.addressof(im)


def test_ms_ssim_of_an_image_with_itself_is_one_and_diversity_ranks_sets():
    x, attrs = draw_faces(0, 12)
    unit = torch.as_tensor(x.transpose(0, 3, 1, 2) / 255.0)
    assert torch.allclose(ms_ssim(unit, unit), torch.ones(12), atol=1e-5)
    same = diversity(np.repeat(x[:1], 10, axis=0), np.zeros(10, int), 30, 0)
    assert same["ms_ssim"] == pytest.approx(1.0, abs=1e-5) and same["ms_ssim_within_class"] is None
    y = np.array([list(HAIR).index(a["hair"]) for a in attrs])
    varied = diversity(x, y, 30, 0)
    assert varied["ms_ssim"] < 0.8


def _png(path, size=(80, 70), mode="RGB", colour=(200, 100, 50)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode != "L" else 128).save(path)
    return path


def test_loader_crops_resizes_converts_and_rejects(tmp_path):
    out = load_face(_png(tmp_path / "a.png", (100, 60)), 64, 32, "convert")
    assert out.shape == (64, 64, 3) and tuple(out[30, 30]) == (200, 100, 50)
    grey = _png(tmp_path / "g.png", mode="L")
    assert load_face(grey, 64, 32, "convert").shape == (64, 64, 3)
    with pytest.raises(PipelineError, match=r"g.png: image mode L, not RGB \(anime_prepare.non_rgb is reject\)"):
        load_face(grey, 64, 32, "reject")
    rgba = tmp_path / "t.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(rgba)
    assert (load_face(rgba, 64, 32, "convert") == 255).all()  # transparent → white, not black
    with pytest.raises(PipelineError, match=r"tiny.png: 20x40 pixels, smaller than anime_prepare.min_size = 32"):
        load_face(_png(tmp_path / "tiny.png", (20, 40)), 64, 32, "convert")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(PipelineError, match=r"bad.jpg: unreadable or corrupt image"):
        load_face(bad, 64, 32, "convert")


def test_folder_labels_from_subfolders_and_csv(tmp_path):
    files = [_png(tmp_path / "red/1.png"), _png(tmp_path / "blue/2.png"), _png(tmp_path / "blue/3.png")]
    files = sorted(files)
    assert folder_labels(tmp_path, files, "folders", "hair") == ["blue", "blue", "red"]
    assert folder_labels(tmp_path, files, None, "hair") == ["face"] * 3
    csv = tmp_path.parent / "labels.csv"
    csv.write_text("file,hair\nred/1.png,red\nblue/2.png,blue\nblue/3.png,black\n")
    assert folder_labels(tmp_path, files, str(csv), "hair") == ["blue", "black", "red"]
    csv.write_text("file,hair\nred/1.png,red\nblue/2.png,blue\n")
    with pytest.raises(PipelineError, match=r"labels.csv: no row for image 'blue/3.png'"):
        folder_labels(tmp_path, files, str(csv), "hair")
    with pytest.raises(PipelineError, match=r"labels.csv: CSV lacks column 'eyes'"):
        folder_labels(tmp_path, files, str(csv), "eyes")
    loose = _png(tmp_path / "loose.png")
    with pytest.raises(PipelineError, match=r"loose.png: not inside a class sub-folder"):
        folder_labels(tmp_path, sorted(files + [loose]), "folders", "hair")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match=r"empty: no images"):
        load_source(str(tmp_path / "empty"), 0, 64, None, "hair", 32, "convert", 0, 1)


def test_split_is_stratified_and_prepared_folder_round_trips(tmp_path):
    y = np.array([0] * 10 + [1] * 5 + [2])
    where = split(y, 0.2, seed=0)
    assert [(where[y == c] == "test").sum() for c in range(3)] == [2, 1, 0]
    assert np.array_equal(where, split(y, 0.2, seed=0))
    x, attrs = draw_faces(0, 16)
    names = [a["hair"] for a in attrs]
    classes = sorted(set(names))
    where = split(np.array([classes.index(n) for n in names]), 0.25, 0)
    write_prepared(tmp_path / "p", x, names, attrs, where, {"classes": classes, "attribute": "hair"})
    meta, sets = read_prepared(tmp_path / "p")
    assert meta["classes"] == classes
    assert np.array_equal(sets["train"].x, x[where == "train"]) and np.array_equal(sets["test"].x, x[where == "test"])
    assert [classes[c] for c in sets["test"].y] == [n for n, w in zip(names, where, strict=True) if w == "test"]
    assert np.array_equal(to_uint8(to_unit(x)), x)


def test_networks_shapes_ranges_and_the_seed_width():
    g = Generator64(latent_dim=100, ngf=64)
    assert g.fc[0].out_features == 4 * 4 * 512  # seed 003: dense → 4×4×512
    g = Generator64(latent_dim=16, ngf=8, n_classes=3)
    x = g(torch.randn(5, 16), torch.arange(5) % 3)
    assert x.shape == (5, 3, 64, 64) and x.abs().max() <= 1
    d = Discriminator64(ndf=8, n_classes=3)
    assert d(x, torch.arange(5) % 3).shape == (5,)
    critic = Discriminator64(ndf=8, norm="none")
    assert critic(x).shape == (5,) and not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    clf = AttributeClassifier(6, width=8)
    assert clf(x).shape == (5, 6) and clf.features(x).shape == (5, 32)
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        Discriminator64(norm="layer")
    sn = Discriminator64(ndf=8, n_classes=3, norm="spectral")
    assert sn(x, torch.arange(5) % 3).shape == (5,) and not any(isinstance(m, torch.nn.BatchNorm2d)
                                                                 for m in sn.modules())
    assert sum(hasattr(m, "weight_orig") for m in sn.modules()) == 6  # 4 convs, the output, the projection
    resize = Generator64(latent_dim=16, ngf=8, n_classes=3, upsampling="resize")
    assert resize(torch.randn(5, 16), torch.arange(5) % 3).shape == (5, 3, 64, 64)
    with pytest.raises(ValueError, match="unknown upsampling 'pixelshuffle'"):
        Generator64(upsampling="pixelshuffle")


@pytest.mark.parametrize("variant", [{"conditional": True, "ema": 0.9}, {"loss": "wgan-gp", "d_steps": 2},
                                     {"loss": "hinge", "d_norm": "spectral", "upsampling": "resize",
                                      "augment": ["color", "translation", "cutout"], "conditional": True}])
def test_gan_run_through_the_shared_harness(variant, tmp_path):
    x, attrs = draw_faces(0, 16, supersample=1)
    y = np.array([list(HAIR).index(a["hair"]) for a in attrs])
    p = AnimeTrainGanParams(run=["v"], variants={"v": variant}, ngf=4, ndf=4, latent_dim=8, epochs=2,
                            batch_size=8, grid_every=1, device="cpu")
    v = p.variant("v")
    from pipeline.anime.data import FaceSet

    seen = []
    g, hist, grids = train(p, v, FaceSet(x, y, []), 6, 0, tmp_path / "ck", lambda e, m, pic: seen.append(e))
    assert len(hist) == 2 and seen == [1, 2] and sorted(grids) == [1, 2]
    assert all(np.isfinite(h["loss_G"]) and np.isfinite(h["loss_D"]) for h in hist)
    assert ("gp" in hist[0]) == (v.loss == "wgan-gp")
    assert (tmp_path / "ck/last.pt").is_file() and len(list((tmp_path / "ck").glob("grid_epoch*.png"))) == 2
    assert not g.training
    faces, labels = generate(g, v, 6, 3, seed=1)
    assert faces.shape == (18, 64, 64, 3) and faces.dtype == np.uint8 and list(labels[:4]) == [0, 0, 0, 1]
    assert np.array_equal(faces, generate(g, v, 6, 3, seed=1)[0])
    assert progress_strip(grids).shape[0] == 2 * (grids[1].shape[0] - 2) // 4 + 4
    assert interpolation(g, v, 6, rows=2, steps=5).shape == (2 * 66 + 2, 5 * 66 + 2, 3)
    # resuming from the finished checkpoint trains nothing more and returns the same generator
    g2, hist2, _ = train(p, v, FaceSet(x, y, []), 6, 0, tmp_path / "ck")
    assert hist2 == hist and all(torch.equal(a, b) for a, b in zip(g.state_dict().values(),
                                                                   g2.state_dict().values(), strict=True))


def test_fixed_latents_draw_the_same_faces_and_keep_train_mode():
    g = Generator64(8, 4, 3).train()
    fixed = FixedLatents(8, 3, seed=7)
    a, b = fixed.grid(g, True), fixed.grid(g, True)
    assert np.array_equal(a, b) and g.training
    assert list(fixed.y[:4]) == [0, 1, 2, 0]


def test_anime_params_are_checked():
    with pytest.raises(PipelineError, match=r"anime_train_gan.variants.x.lossy: unknown key"):
        parse_params({"anime_train_gan": {"run": ["x"], "variants": {"x": {"lossy": "bce"}}}})
    with pytest.raises(PipelineError, match=r"anime_train_gan.variants.x.loss: expected one of"):
        parse_params({"anime_train_gan": {"run": ["x"], "variants": {"x": {"loss": "l2"}}}})
    with pytest.raises(PipelineError, match=r"anime_train_gan.run: unknown variant 'y' \(known: x\)"):
        parse_params({"anime_train_gan": {"run": ["y"], "variants": {"x": {}}}})
    with pytest.raises(PipelineError, match=r"anime_train_gan.variants.x.augment: expected list of str \(distinct names from"):
        parse_params({"anime_train_gan": {"run": ["x"], "variants": {"x": {"augment": ["flip"]}}}})
    with pytest.raises(PipelineError, match=r"anime_train_gan.seeds: expected list of int \(non-empty, distinct"):
        parse_params({"anime_train_gan": {"seeds": [0, 0]}})
    with pytest.raises(PipelineError, match=r"anime_train_gan.variants.x.d_norm: expected one of"):
        parse_params({"anime_train_gan": {"run": ["x"], "variants": {"x": {"d_norm": "layer"}}}})
    with pytest.raises(PipelineError, match=r"anime_train_gan.variants.x.ema: expected float in \[0, 1\)"):
        parse_params({"anime_train_gan": {"run": ["x"], "variants": {"x": {"ema": 1.0}}}})
    with pytest.raises(PipelineError, match=r"anime_train_gan.variants.c.conditional: needs class labels"):
        parse_params({"anime_prepare": {"source": "/some/folder"},
                      "anime_train_gan": {"run": ["c"], "variants": {"c": {"conditional": True}}}})
    with pytest.raises(PipelineError, match=r"anime_prepare.attribute: unknown attribute 'ears'.*known: hair"):
        parse_params({"anime_prepare": {"attribute": "ears"}})
    with pytest.raises(PipelineError, match=r"anime_prepare.size: expected int \(the DCGAN is built for 64\)"):
        parse_params({"anime_prepare": {"size": 128}})
    v = parse_params({"anime_train_gan": {"run": ["x"], "lr_G": 0.01, "batch_size": 256,
                                          "variants": {"x": {"conditional": True}}}}).anime_train_gan.variant("x")
    assert v.conditional and v.lr_G == 0.01 and v.ngf == 64


def test_evaluate_measures_real_and_generated_sets_by_their_kind():
    from pipeline.anime.data import FaceSet
    from pipeline.anime.evaluation import Generated, evaluate, summarise, table
    from pipeline.train.gan_outputs import seed_runs
    from pipeline.anime.params import AnimeClassifyParams

    x, attrs = draw_faces(0, 48, supersample=1)
    classes = sorted(HAIR)
    y = np.array([classes.index(a["hair"]) for a in attrs])
    train, test = FaceSet(x[:36], y[:36], []), FaceSet(x[36:], y[36:], [])
    noise = np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    p = AnimeClassifyParams(epochs=2, batch_size=12, detector_images=12, ms_ssim_pairs=20, kid_subsets=3,
                            kid_subset_size=6, device="cpu")
    one = np.repeat(x[36:37], 12, axis=0)  # a generator that draws one face
    m = evaluate(p, train, test, classes, {"copies-0": Generated(x[36:], y[36:], True),
                                           "noise-0": Generated(noise, np.zeros(12, int), False),
                                           "one-0": Generated(one, np.zeros(12, int), False),
                                           "one-1": Generated(one, np.zeros(12, int), False)})
    m = summarise(m, seed_runs(["copies", "noise"], [0]) | seed_runs(["one"], [0, 1]))
    assert m["real"]["detector"]["images"] == 12 and m["real"]["detector"]["detection_rate"] == 1.0
    copies, noise_row = m["runs"]["copies-0"], m["runs"]["noise-0"]
    assert copies["detector"]["detection_rate"] == 1.0 and noise_row["detector"]["detection_rate"] == 0.0
    assert copies["accuracy_by_condition"] == pytest.approx(m["real"]["accuracy"])  # the test faces themselves
    assert "accuracy_by_condition" not in noise_row and noise_row["ms_ssim_within_class"] is None
    assert copies["distance"]["fd_attrclf"] == pytest.approx(m["reference"]["fd_attrclf"])
    assert noise_row["distance"]["fd_attrclf"] > copies["distance"]["fd_attrclf"]
    assert sum(noise_row["predicted_share"].values()) == pytest.approx(1.0)
    # the collapse alarm: one face drawn over and over is flagged (MS-SSIM 1 > real + 0.15); the real faces are not
    assert m["collapsed"] == {"copies": False, "noise": False, "one": True}
    assert m["variants"]["one"]["seeds"] == [0, 1] and m["variants"]["one"]["ms_ssim"]["n"] == 2
    assert m["variants"]["copies"]["detector"]["detection_rate"]["mean"] == 1.0
    text = table(m)
    assert "| `copies` | 0 |" in text and "| `noise` | 0 | 0.000 | – | – |" in text
    assert "| **`one` (collapsed)** | 0, 1 | 1.000 ± 0.000 |" in text
