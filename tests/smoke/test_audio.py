"""Audio domain stages on TINY params: the whole chain once, and bad input failing in one line (exit 2) without
leaving anything half-written."""

import json

import numpy as np
import pytest

from tests.conftest import run_stage, write_params
from tests.smoke.test_bad_input import _assert_clean_failure


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """synthesize → features → train_gan@<each TINY variant> → evaluate, in one folder."""
    work = tmp_path_factory.mktemp("audio")
    write_params(work, {"audio_train_gan": {"seeds": [0, 1]}})
    with pytest.MonkeyPatch.context() as mp:
        # tiny networks: on a shared 2-core box a second intra-op thread slows the stages down several-fold
        mp.setenv("OMP_NUM_THREADS", "1")
        _run_chain(work)
    return work


def _run_chain(work):
    steps = [("stages.audio.synthesize", ["--out", "data/pairs", "--metrics", "m/synth.json"]),
             ("stages.audio.features", ["--pairs", "data/pairs", "--out", "data/features", "--metrics", "m/feat.json"])]
    steps += [("stages.audio.train_gan", ["--name", n, "--seed", str(s), "--pairs", "data/pairs", "--features",
                                          "data/features", "--out", f"data/gan/{n}-{s}", "--plots", f"m/{n}-{s}.csv",
                                          "--metrics", f"m/{n}-{s}.json"])
              for n in ("cgan", "sn_hinge_proj_fbank") for s in (0, 1)]
    steps.append(("stages.audio.evaluate", ["--pairs", "data/pairs", "--features", "data/features", "--gans",
                                            "data/gan", "--out", "reports", "--metrics", "m/eval.json"]))
    for module, args in steps:
        res = run_stage(module, work, *args)
        assert res.returncode == 0, (module, res.stderr[-2500:])


def test_synthesize_splits_by_voice_and_writes_examples(chain):
    meta = json.loads((chain / "data/pairs/meta.json").read_text())
    assert meta["voices"]["test"] and not set(meta["voices"]["test"]) & set(meta["voices"]["train"])
    assert meta["pairing"] == "class" and meta["samples"] == 16000 and meta["classes"][7] == "seven"
    m = json.loads((chain / "m/synth.json").read_text())
    assert m["train_clips"] == 20 and m["test_clips"] == 10 and m["train_images"] == m["test_images"] == 300
    assert len(list((chain / "data/pairs/examples").glob("*.wav"))) == 10
    assert (chain / "data/pairs/spectrograms.png").is_file()


def test_features_and_gans_write_what_the_next_stage_reads(chain):
    with np.load(chain / "data/features/test.npz") as z:
        assert z["embedding"].shape == (10, 64) and z["fbank"].shape == (10, 40) and z["spectrogram"].shape == (10, 257)
    m = json.loads((chain / "m/feat.json").read_text())
    assert 0 <= m["embedder_test_accuracy"] <= 1 and m["mfcc.dims"] == 13
    with np.load(chain / "data/gan/cgan-0/samples.npz") as z, np.load(chain / "data/gan/cgan-1/samples.npz") as z1:
        assert z["images"].shape == (20, 1, 32, 32) and z["images"].dtype == np.uint8
        assert (z["label"] == np.repeat(np.arange(10), 2)).all()
        assert not np.array_equal(z["images"], z1["images"])  # the seed reaches the weights and latents
    assert json.loads((chain / "m/cgan-0.json").read_text())["epochs"] == 1


def test_evaluate_writes_tables_grids_and_metrics(chain):
    report = (chain / "reports/report.md").read_text()
    assert "| (a) | real test images (upper bound)" in report and "`sn_hinge_proj_fbank`" in report
    assert "(form of seed Table 2)" in report and "| ×0.5 | ×1 | ×2 |" in report
    assert "trained with seeds 0, 1;" in report and "Collapse alarm" in report
    m = json.loads((chain / "m/eval.json").read_text())
    assert set(m["variants"]) == {"cgan", "sn_hinge_proj_fbank"} and m["seeds"] == [0, 1]
    assert set(m["runs"]) == {"cgan-0", "cgan-1", "sn_hinge_proj_fbank-0", "sn_hinge_proj_fbank-1"}
    assert set(m["collapsed"]) == set(m["variants"]) and all(isinstance(f, bool) for f in m["collapsed"].values())
    row = m["variants"]["cgan"]
    assert {"is_mean", "is_std", "is_ratio", "fd_digitclf", "agreement", "volume"} <= set(row)
    assert row["seeds"] == [0, 1] and row["is_mean"]["n"] == 2
    assert row["is_mean"]["lo"] <= row["is_mean"]["mean"] <= row["is_mean"]["hi"]
    runs = m["runs"]
    assert row["is_mean"]["mean"] == pytest.approx((runs["cgan-0"]["is_mean"] + runs["cgan-1"]["is_mean"]) / 2)
    assert row["volume"]["1"]["change"]["mean"] == 0.0 and 1.0 <= row["is_mean"]["mean"] <= 10.0
    for name in ("grid_cgan-0.png", "volume_sn_hinge_proj_fbank-1.png", "losses.png"):
        assert (chain / "reports" / name).is_file()


def test_missing_source_fails_cleanly(tmp_path):
    write_params(tmp_path, {"audio_synthesize": {"source": "no/such/pairs.csv"}})
    res = run_stage("stages.audio.synthesize", tmp_path, "--out", "out")
    _assert_clean_failure(res, "audio_synthesize.source: 'no/such/pairs.csv' is neither 'espeak'")
    assert not (tmp_path / "out").exists()


def test_corrupt_user_audio_is_named_and_nothing_is_written(tmp_path):
    import soundfile as sf
    from PIL import Image

    for i in range(2):
        sf.write(str(tmp_path / f"{i}.wav"), np.zeros(1600, np.float32), 16000)
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "1.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (tmp_path / "pairs.csv").write_text("audio,image,label,split\n0.wav,0.png,a,train\n1.wav,1.png,a,test\n")
    write_params(tmp_path, {"audio_synthesize": {"source": str(tmp_path / "pairs.csv")}})
    res = run_stage("stages.audio.synthesize", tmp_path, "--out", "out")
    _assert_clean_failure(res, "1.wav: unreadable audio")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
