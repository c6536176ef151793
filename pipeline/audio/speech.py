"""eSpeak NG through ctypes: the only module of the project that talks to libespeak-ng.

The library and its voice data come from the PyPI package ``espeakng-loader`` (no root, no system
package). eSpeak's state is process-global, and it is not reset between utterances: pitch flutter
and other internal counters carry over, so the same text spoken after a different one comes out
slightly differently. So every utterance is synthesised in its own forked child of a process that has
only initialised the library: each starts from the same pristine state and, with its own random seed
(``espeak_ng_SetRandSeed``, used by the noise sources of Klatt/whisper voices), the result depends on
the utterance alone, not on what was spoken before it or in which order. Children also give the
parallelism (``workers``); threads are never used, since eSpeak is not thread-safe.

The forking process is a small server (``python pipeline/audio/speech.py jobs.json out.npz workers``)
started for each batch, not the caller: forking a big process (MLflow, torch loaded) costs tens of
milliseconds per child in page tables alone, forking the server well under one.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

if __package__ in (None, ""):  # run as the server script: import ``pipeline`` from the project, and
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # nothing from this folder as top-level modules

from pipeline.errors import PipelineError  # noqa: E402

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
RATE, PITCH = 1, 3  # espeak_PARAMETER values
POS_CHARACTER, CHARS_UTF8 = 1, 1
EE_OK = 0
UNKNOWN_VOICE, FAILED = 2, 1  # child status words

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class Utterance:
    """One thing to say: ``voice`` is an eSpeak NG voice name, e.g. ``en-us+m3`` (language + variant)."""

    text: str
    voice: str
    rate_wpm: int = 175
    pitch: int = 50
    seed: int = 0


def _data_path() -> str:
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise PipelineError(f"eSpeak NG needs the espeakng-loader package ({exc})") from None
    return espeakng_loader.get_data_path()


class _Engine:
    """libespeak-ng initialised once in the server process (which never speaks itself: its children do)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, _data_path().encode(), INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise PipelineError(f"eSpeak NG failed to initialise with data at {_data_path()}")
        self.lib, self.sample_rate, self._chunks = lib, rate, []
        self._cb = _CALLBACK(self._collect)  # keep a reference: the library holds the pointer
        lib.espeak_SetSynthCallback(self._cb)

    def _collect(self, wav, n: int, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0: continue synthesis

    def speak(self, u: Utterance) -> np.ndarray:
        """int16 samples of ``u``. Call in a child only (it changes the library's state)."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(u.voice.encode()) != EE_OK:
            raise KeyError(u.voice)
        lib.espeak_SetParameter(RATE, int(u.rate_wpm), 0)
        lib.espeak_SetParameter(PITCH, int(u.pitch), 0)
        lib.espeak_ng_SetRandSeed(int(u.seed))
        self._chunks = []
        text = u.text.encode() + b"\0"
        lib.espeak_Synth(text, len(text), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


# ---------------------------------------------------------------- server side: one child per utterance
def _spawn(eng: _Engine, u: Utterance) -> tuple[int, int]:
    """Fork a child that speaks ``u`` and writes status (int32) + int16 samples into a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's code
        status, data = FAILED, b""
        try:
            os.close(r)
            data = eng.speak(u).astype("<i2").tobytes()
            status = 0
        except KeyError:
            status = UNKNOWN_VOICE
        except BaseException:  # noqa: BLE001 - any failure is reported through the status word
            status = FAILED
        try:
            with os.fdopen(w, "wb") as fh:
                fh.write(struct.pack("<i", status) + data)
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _collect(u: Utterance, pid: int, fd: int) -> np.ndarray:
    with os.fdopen(fd, "rb") as fh:
        blob = fh.read()
    os.waitpid(pid, 0)
    status = struct.unpack("<i", blob[:4])[0] if len(blob) >= 4 else FAILED
    if status == UNKNOWN_VOICE:
        raise PipelineError(f"eSpeak NG has no voice {u.voice!r}")
    if status != 0:
        raise PipelineError(f"eSpeak NG failed to speak {u.text!r} with voice {u.voice!r}")
    return np.frombuffer(blob[4:], "<i2")


def _forked(eng: _Engine, utterances: list[Utterance], workers: int) -> Iterator[np.ndarray]:
    """int16 waveforms in order, with up to ``workers`` children at a time."""
    pending: deque = deque()
    try:
        for u in utterances:
            pending.append((u, *_spawn(eng, u)))
            if len(pending) >= workers:
                yield _collect(*pending.popleft())
        while pending:
            yield _collect(*pending.popleft())
    finally:  # an error or an abandoned generator: reap the children still running
        for _, pid, fd in pending:
            os.close(fd)
            os.waitpid(pid, 0)


def _serve(jobs: Path, out: Path, workers: int, progress: bool) -> int:
    """Server entry point: speak every job of ``jobs`` (JSON list), write ``out`` (npz) or ``out``.error."""
    from tqdm import tqdm

    try:
        eng = _Engine()
        utts = [Utterance(**j) for j in json.loads(jobs.read_text())]
        waves = list(tqdm(_forked(eng, utts, workers), total=len(utts), desc="eSpeak NG", unit="clip",
                          disable=not progress))
    except PipelineError as exc:
        out.with_suffix(".error").write_text(str(exc))
        return 2
    np.savez(out, audio=np.concatenate(waves or [np.zeros(0, np.int16)]), lengths=[len(w) for w in waves],
             sample_rate=eng.sample_rate)
    return 0


# ---------------------------------------------------------------- caller side
def speak_all(utterances: Iterable[Utterance], workers: int = 1, progress: bool = True) -> tuple[list[np.ndarray], int]:
    """Float32 waveforms in [-1, 1] (in order) and their sample rate (22050 Hz for eSpeak NG)."""
    utts = list(utterances)
    _data_path()
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        jobs, out = Path(tmp) / "jobs.json", Path(tmp) / "out.npz"
        jobs.write_text(json.dumps([asdict(u) for u in utts]))
        res = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(jobs), str(out), str(workers),
                              "1" if progress else "0"], stdout=subprocess.DEVNULL)
        if out.with_suffix(".error").is_file():
            raise PipelineError(out.with_suffix(".error").read_text())
        if res.returncode != 0 or not out.is_file():
            raise PipelineError(f"eSpeak NG synthesis failed (server exit status {res.returncode})")
        with np.load(out) as z:
            audio, lengths, rate = z["audio"], z["lengths"], int(z["sample_rate"])
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return [audio[s:e].astype(np.float32) / 32768.0 for s, e in zip(starts[:-1], starts[1:], strict=True)], rate


def speak(u: Utterance) -> tuple[np.ndarray, int]:
    """One utterance (see ``speak_all``)."""
    waves, rate = speak_all([u], progress=False)
    return waves[0], rate


def variants() -> list[str]:
    """The voice variants shipped with the data (``m1``, ``f2``, ``klatt``, ``whisper``, ...)."""
    return sorted(f.name for f in (Path(_data_path()) / "voices" / "!v").iterdir())


def check_voices(names: Iterable[str]) -> None:
    """Raise PipelineError naming the first voice eSpeak NG does not know. The library silently falls
    back to the plain language for an unknown ``+variant``, so variants are checked against its data."""
    names, known = list(names), variants()
    for name in names:
        variant = name.partition("+")[2]
        if variant and variant not in known:
            raise PipelineError(f"eSpeak NG has no voice variant {variant!r} (in {name!r}; known: {', '.join(known)})")
    speak_all([Utterance(".", n) for n in names], progress=False)  # the language parts


if __name__ == "__main__":
    sys.exit(_serve(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"))
