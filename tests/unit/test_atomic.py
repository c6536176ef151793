"""Atomic outputs: a killed run's temporary folders go at the next run; NaN-free JSON; a full disk is one line."""

import errno
import os
import subprocess
import sys

import pytest

from pipeline.errors import cli
from pipeline.io.atomic import atomic_dir, write_json_atomic


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_temporary_folders_are_removed_at_the_next_run(tmp_path):
    out = tmp_path / "render"
    dead, live = tmp_path / f".render.tmp-{_dead_pid()}", tmp_path / f".render.tmp-{os.getppid()}"
    (dead / ".work-abc").mkdir(parents=True)  # what kill -9 during a render leaves
    live.mkdir()  # another live process's: left alone
    other = tmp_path / f".crops.tmp-{_dead_pid()}"
    other.mkdir()  # another output's: its own stage cleans it
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("1")
    assert (out / "x").read_text() == "1" and not dead.exists() and live.is_dir() and other.is_dir()
    stale = tmp_path / f".m.json.tmp-{_dead_pid()}"
    stale.write_text("{")
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert not stale.exists() and (tmp_path / "m.json").read_text().startswith("{")


def test_a_full_disk_is_one_line_naming_the_path(capsys):
    @cli
    def stage() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "data/render/images/000003.png")

    with pytest.raises(SystemExit) as exit_:
        stage()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err == [
        "error: no space left on device writing data/render/images/000003.png (errno 28); free some space and rerun"]

    @cli
    def other() -> None:
        raise OSError(errno.EACCES, "Permission denied", "x")

    with pytest.raises(PermissionError):  # only a full disk is turned into a line; other faults stay loud
        other()
