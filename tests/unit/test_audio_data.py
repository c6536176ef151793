"""Audio domain, data side: eSpeak NG synthesis, mixing at an SNR, the voice split, class pairing, the user's
pairs, and the feature code against direct librosa calls."""

import dataclasses

import re
import time

import numpy as np
import pytest
from PIL import Image

from pipeline.audio.data import (
    DIGITS,
    load_pairs,
    load_user_pairs,
    mix,
    noise,
    pair_by_class,
    plan,
    read_audio,
    save_pairs,
    trim,
    write_examples,
)
from pipeline.audio.features import FRAME_FEATURES, Standardizer, fbank, mfcc, spectrogram, time_averaged
from pipeline.audio.params import AudioFeaturesParams, AudioSynthesizeParams
from pipeline.audio.speech import Utterance, check_voices, speak_all
from pipeline.errors import PipelineError

SR = 16000


@pytest.fixture(scope="module")
def spoken():
    """Every digit in two voices (one call: one server process), plus repeats in another order."""
    utts = [Utterance(d, "en-us+m1", 160, 50, seed=i) for i, d in enumerate(DIGITS)]
    utts += [Utterance(d, "en+f3", 140, 70, seed=10 + i) for i, d in enumerate(DIGITS)]
    waves, rate = speak_all(utts, workers=2, progress=False)
    again, _ = speak_all([utts[7], utts[12], utts[0]], workers=1, progress=False)
    return utts, waves, rate, again


def test_espeak_speaks_each_digit_at_a_plausible_length_and_rate(spoken):
    utts, waves, rate, _ = spoken
    assert rate == 22050
    for u, w in zip(utts, waves, strict=True):
        speech = trim(w)
        assert w.dtype == np.float32 and np.abs(w).max() <= 1.0
        assert 0.15 < len(speech) / rate < 1.2, (u, len(speech) / rate)  # one word at 140-160 wpm
    # a slower rate gives a longer word
    slow, _ = speak_all([Utterance("seven", "en-us+m1", 90, 50)], progress=False)
    assert len(trim(slow[0])) > 1.3 * len(trim(waves[7]))


def test_espeak_is_deterministic_and_independent_of_order(spoken):
    utts, waves, _, again = spoken
    # the same utterance, spoken in another batch after other words, is bit-identical
    assert np.array_equal(again[0], waves[7]) and np.array_equal(again[1], waves[12])
    assert np.array_equal(again[2], waves[0])


def test_digits_and_voices_differ_and_keep_their_class(spoken):
    import librosa

    _, waves, rate, _ = spoken
    m1, f3 = waves[:10], waves[10:]
    assert all(not np.array_equal(a, b) for a, b in zip(m1, f3, strict=True))
    assert len({len(w) for w in m1}) > 5  # words differ in length

    def mf(y):
        m = librosa.feature.mfcc(y=trim(y), sr=rate, n_mfcc=13, n_fft=512, hop_length=220)[1:]
        return m - m.mean(axis=1, keepdims=True)  # cepstral mean normalisation: removes the voice's tilt

    ref, qry = [mf(y) for y in m1], [mf(y) for y in f3]
    dist = np.array([[librosa.sequence.dtw(q, r)[0][-1, -1] / (q.shape[1] + r.shape[1]) for r in ref] for q in qry])
    # nearest neighbour across voices (DTW on MFCCs) finds the same digit for most words
    assert (dist.argmin(axis=1) == np.arange(10)).sum() >= 7


def test_unknown_voices_are_named():
    with pytest.raises(PipelineError, match=r"no voice variant 'm99'.*known: .*m1"):
        check_voices(["en+m99"])
    with pytest.raises(PipelineError, match=r"no voice 'xx-nowhere\+m1'"):
        check_voices(["xx-nowhere+m1"])


def test_mix_gives_exact_length_level_and_snr():
    p = AudioSynthesizeParams(duration_s=1.0, sample_rate=SR)
    rate = 22050
    t = np.arange(int(0.4 * rate)) / rate
    speech = np.concatenate([np.zeros(2000), 0.3 * np.sin(2 * np.pi * 440 * t), np.zeros(3000)]).astype(np.float32)
    clean, cut = mix(speech, rate, p, level_db=-6.0, snr_db=200.0, kind="white", offset=0.5, seed=1)
    assert clean.shape == (SR,) and not cut
    assert np.abs(clean).max() == pytest.approx(10 ** (-6 / 20), rel=1e-2)
    active = np.abs(clean) > 1e-3
    assert 0.38 < active.mean() < 0.42  # 0.4 s of tone in a 1 s clip (silence trimmed)
    start = np.flatnonzero(active)[0]
    assert abs(start - 0.5 * (SR - 0.4 * SR)) < 100  # placed at the offset
    for kind in ("white", "pink"):
        noisy, _ = mix(speech, rate, p, level_db=-6.0, snr_db=10.0, kind=kind, offset=0.5, seed=1)
        n = noisy - clean
        s_power = np.mean(clean[active] ** 2)
        assert 10 * np.log10(s_power / np.mean(n**2)) == pytest.approx(10.0, abs=0.2)
    long, cut = mix(np.tile(speech, 5), rate, p, -6.0, 20.0, "white", 0.0, 1)
    assert cut and long.shape == (SR,)


def test_pink_noise_has_falling_spectrum():
    rng = np.random.default_rng(0)
    w, pk = noise("white", 2**15, rng), noise("pink", 2**15, rng)
    assert np.mean(w**2) == pytest.approx(1.0, rel=1e-6) and np.mean(pk**2) == pytest.approx(1.0, rel=1e-6)
    spec = np.abs(np.fft.rfft(pk)) ** 2
    low, high = spec[10:100].mean(), spec[5000:10000].mean()
    assert low > 20 * high  # 1/f: two decades of frequency between the bands


def test_plan_splits_by_voice_and_pairs_by_class():
    p = AudioSynthesizeParams(accents=["en-us", "en"], voices=["m1", "m2", "m3", "f1", "f2"], test_voices=2, repeats=2)
    clips = plan(p)
    assert len(clips) == 2 * 5 * 10 * 2
    test_voices = {c["voice"] for c in clips if c["split"] == "test"}
    train_voices = {c["voice"] for c in clips if c["split"] == "train"}
    assert len(test_voices) == 2 and not test_voices & train_voices and test_voices | train_voices == set(p.voices)
    assert all(p.rate_wpm[0] <= c["rate_wpm"] <= p.rate_wpm[1] and p.snr_db[0] <= c["snr_db"] <= p.snr_db[1]
               for c in clips)
    assert plan(p) == clips and plan(dataclasses.replace(p, seed=1)) != clips
    labels = np.repeat(np.arange(10), 7)
    image_labels = np.tile(np.arange(10), 5)
    idx = pair_by_class(labels, image_labels, seed=0)
    assert (image_labels[idx] == labels).all()
    assert all(len(set(idx[labels == c])) == 5 for c in range(10))  # the pool of 5 is used up before repeating


def _write_pairs(root, rows):
    import soundfile as sf

    for audio, image, ok in rows:
        (root / audio).parent.mkdir(parents=True, exist_ok=True)
        if ok:
            sf.write(str(root / audio), np.sin(np.arange(8000) / 5.0).astype(np.float32) * 0.1, 8000)
        else:
            (root / audio).write_bytes(b"RIFF not really a wave file")
        Image.fromarray(np.full((20, 24, 3), 200, np.uint8)).save(root / image)


def test_user_manifest_loads_resamples_and_splits_by_voice(tmp_path):
    rows = [(f"a/{i}.wav", f"a/{i}.png", True) for i in range(6)]
    _write_pairs(tmp_path, rows)
    (tmp_path / "m.csv").write_text("audio,image,label,voice\n" + "".join(
        f"a/{i}.wav,a/{i}.png,{'dog' if i % 2 else 'cat'},v{i // 2}\n" for i in range(6)))
    p = AudioSynthesizeParams(source=str(tmp_path / "m.csv"), test_voices=1, sample_rate=SR, duration_s=1.0)
    sets, classes, _ = load_user_pairs(p)
    assert classes == ["cat", "dog"]
    assert len(sets["test"].audio) == 2 and len(sets["train"].audio) == 4
    assert not set(sets["test"].voice) & set(sets["train"].voice)
    assert sets["train"].audio.shape[1] == SR and sets["train"].images.shape[1:] == (1, 32, 32)
    # 8000 samples at 8 kHz → 1 s at 16 kHz, resampled (not zero-padded)
    assert np.abs(sets["train"].audio[0][-200:]).max() > 0.05
    assert (sets["train"].paired_images() == sets["train"].images).all()


def test_user_pairs_errors_name_the_file(tmp_path):
    _write_pairs(tmp_path, [("x/0.wav", "x/0.png", True), ("x/1.wav", "x/1.png", False)])
    (tmp_path / "m.csv").write_text("audio,image,label,split\nx/0.wav,x/0.png,a,train\nx/1.wav,x/1.png,a,test\n")
    p = AudioSynthesizeParams(source=str(tmp_path / "m.csv"))
    with pytest.raises(PipelineError, match=r"x/1.wav: unreadable audio"):
        load_user_pairs(p)
    with pytest.raises(PipelineError, match=r"nope.wav: audio file not found"):
        read_audio(tmp_path / "nope.wav", SR, SR)
    (tmp_path / "m.csv").write_text("audio,label\nx/0.wav,a\n")
    with pytest.raises(PipelineError, match=r"m.csv: CSV manifest lacks column 'image'"):
        load_user_pairs(p)
    (tmp_path / "m.csv").write_text("audio,image,label\nx/0.wav,x/0.png,a\n")
    with pytest.raises(PipelineError, match=r"every row needs a split \(train/test\) or a voice"):
        load_user_pairs(p)
    (tmp_path / "x/0.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "m.csv").write_text("audio,image,label,split\nx/0.wav,x/0.png,a,train\n")
    with pytest.raises(PipelineError, match=r"x/0.png: unreadable or corrupt image"):
        load_user_pairs(p)
    for body, message in [("x/0.wav,x/0.png\n", "m.csv: row 2 has fewer fields than the header (no 'label')"),
                          (",x/0.png,a\n", "m.csv: row 2 column 'audio': String should have at least 1 character"),
                          ("../0.wav,x/0.png,a\n", "m.csv: row 2 audio '../0.wav' points outside"),
                          ("x/0.wav,/etc/hostname,a\n", "m.csv: row 2 image '/etc/hostname' is an absolute path")]:
        (tmp_path / "m.csv").write_text("audio,image,label\n" + body)
        with pytest.raises(PipelineError, match=re.escape(message)):
            load_user_pairs(p)


def test_missing_stage_outputs_name_the_stage(tmp_path):
    from pipeline.audio.data import read_pairs
    from pipeline.audio.features import read_features

    with pytest.raises(PipelineError, match=r"nothing/meta.json: not found \(run the audio_synthesize stage\)"):
        read_pairs(tmp_path / "nothing")
    with pytest.raises(PipelineError, match=r"nothing/meta.json: not found \(run the audio_features stage\)"):
        read_features(tmp_path / "nothing")


def test_user_folder_layout_and_round_trip(tmp_path):
    _write_pairs(tmp_path, [(f"{s}/{lab}/{i}.wav", f"{s}/{lab}/{i}.png", True)
                            for s in ("train", "test") for lab in ("up", "down") for i in range(2)])
    sets, classes, _ = load_user_pairs(AudioSynthesizeParams(source=str(tmp_path), grayscale=False, image_size=16))
    assert classes == ["down", "up"] and len(sets["train"].label) == 4 and sets["test"].images.shape == (4, 3, 16, 16)
    save_pairs(tmp_path / "t.npz", sets["train"])
    back = load_pairs(tmp_path / "t.npz")
    assert np.abs(back.audio - sets["train"].audio).max() < 1e-3  # stored as float16
    assert (back.images == sets["train"].images).all() and (back.label == sets["train"].label).all()


def test_examples_are_the_clips_and_their_bytes_repeat(tmp_path):
    """The listening examples hold each class's first clip exactly, and writing them again gives the same bytes
    (a float WAV from libsndfile carries a PEAK chunk stamped with the time of writing)."""
    import soundfile as sf

    _write_pairs(tmp_path / "in", [(f"{s}/{lab}/{i}.wav", f"{s}/{lab}/{i}.png", True)
                                   for s in ("train", "test") for lab in ("up", "down") for i in range(2)])
    sets, classes, _ = load_user_pairs(AudioSynthesizeParams(source=str(tmp_path / "in"), grayscale=False,
                                                             image_size=16))
    first = write_examples(tmp_path / "a", sets["test"], classes, SR)
    time.sleep(1.1)  # the PEAK chunk's time stamp has whole seconds
    again = write_examples(tmp_path / "b", sets["test"], classes, SR)
    assert [p.name for p in first] == ["00_down.wav", "01_up.wav"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    for c, path in enumerate(first):
        audio, rate = sf.read(path, dtype="float32")
        assert rate == SR
        np.testing.assert_array_equal(audio, sets["test"].audio[np.flatnonzero(sets["test"].label == c)[0]])


# ---------------------------------------------------------------- features
@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    return (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.01 * rng.standard_normal(SR)).astype(np.float32)


def test_features_agree_with_direct_librosa_calls(clip):
    import librosa

    p = AudioFeaturesParams(n_fft=512, hop=160, n_mels=40, n_mfcc=13)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(y=clip, sr=SR, n_fft=512, hop_length=160, n_mels=40),
                                 ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(fbank(clip, SR, p), mel_db, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(mfcc(clip, SR, p), librosa.feature.mfcc(S=mel_db, n_mfcc=13), rtol=1e-4, atol=1e-3)
    spec_db = librosa.amplitude_to_db(np.abs(librosa.stft(clip, n_fft=512, hop_length=160)), ref=1.0, amin=1e-5,
                                      top_db=None)
    np.testing.assert_allclose(spectrogram(clip, SR, p), spec_db, rtol=1e-4, atol=1e-3)
    vec = time_averaged(clip[None], SR, p)
    assert {k: v.shape for k, v in vec.items()} == {"spectrogram": (1, 257), "fbank": (1, 40), "mfcc": (1, 13)}
    np.testing.assert_allclose(vec["fbank"][0], mel_db.mean(axis=1), rtol=1e-5, atol=1e-4)
    assert set(FRAME_FEATURES) == {"spectrogram", "fbank", "mfcc"}


def test_features_see_pitch_and_level(clip):
    p = AudioFeaturesParams()
    spec = time_averaged(clip[None], SR, p, ("spectrogram",))["spectrogram"][0]
    assert spec.argmax() == round(1000 / (SR / p.n_fft))  # the tone's bin
    quiet, loud = (time_averaged(g * clip[None], SR, p, ("fbank",))["fbank"][0] for g in (1.0, 2.0))
    np.testing.assert_allclose(loud - quiet, 20 * np.log10(2), atol=1e-3)  # absolute dB: gain is a shift


def test_standardizer_round_trip():
    x = np.random.default_rng(0).normal(3, 2, (50, 4))
    x[:, 2] = 1.0
    z = Standardizer.fit(x)(x)
    assert np.abs(z.mean(0)).max() < 1e-5 and np.allclose(z[:, [0, 1, 3]].std(0), 1, atol=1e-5)
    assert (z[:, 2] == 0).all()
