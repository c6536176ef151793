"""`python -m pipeline.stack` on bad state: one line and exit status 2, before anything starts."""

import os
import socket
import sys

import pytest

from pipeline.stack import servers as stack


def _main(monkeypatch, capsys, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["pipeline.stack", *args])
    with pytest.raises(SystemExit) as exc:
        stack.main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_missing_postgres_binaries(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("SYNTHPIPE_PG_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(stack.postgres, "DEBIAN", tmp_path / "none")
    err = _main(monkeypatch, capsys, "up", "--dir", str(tmp_path / "s"))
    assert "postgresql-15" in err and "SYNTHPIPE_PG_BIN" in err
    assert not (tmp_path / "s").exists()


def test_state_dir_not_writable(monkeypatch, capsys, tmp_path):
    (tmp_path / "file").write_text("")
    err = _main(monkeypatch, capsys, "up", "--dir", str(tmp_path / "file" / "s"))
    assert "not a writable folder" in err


def test_busy_port(monkeypatch, capsys, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        err = _main(monkeypatch, capsys, "up", "--dir", str(tmp_path / "s"), "--mlflow-port", str(port))
    assert f"port {port} on 127.0.0.1 (mlflow) is busy" in err
    assert not (tmp_path / "s" / "stack.json").exists()


@pytest.mark.parametrize("command", ["env", "status"])
def test_no_stack_in_dir(monkeypatch, capsys, tmp_path, command):
    err = _main(monkeypatch, capsys, command, "--dir", str(tmp_path))
    assert "no stack here" in err


def test_down_without_stack_is_not_an_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["pipeline.stack", "down", "--dir", str(tmp_path)])
    stack.main()
    assert "nothing to stop" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to the `postgres` user")
def test_root_state_dir_the_postgres_user_cannot_reach(monkeypatch, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    err = _main(monkeypatch, capsys, "up", "--dir", str(locked / "s"))
    assert "the `postgres` user cannot reach" in err and "chmod o+x" in err
