"""The daemon's PID file (mullama.pidfile), shared by the daemon and the CLI, on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mullama import pidfile


def test_write_read_remove(tmp_path):
    path = tmp_path / "run" / "mullamad.pid"
    record = pidfile.write(path, http="http://127.0.0.1:8080", socket="ipc:///x", version="1")
    data = json.loads(path.read_text())
    assert set(data) == {"pid", "http", "socket", "started", "version"}
    assert data["pid"] == os.getpid() and data["http"] == "http://127.0.0.1:8080"
    assert pidfile.read(path) == record
    assert [p.name for p in path.parent.iterdir()] == ["mullamad.pid"]  # no temp file left
    assert pidfile.running_daemon(path) is None  # our own record never blocks us
    pidfile.remove(path)
    assert not path.exists() and pidfile.read(path) is None


def test_read_tolerates_what_is_not_a_record(tmp_path):
    path = tmp_path / "mullamad.pid"
    path.write_text("4242\n")  # a bare PID
    assert pidfile.read(path) == pidfile.PidRecord(pid=4242)
    for junk in ("", "{", '{"pid": "x"}', '{"http": "h"}', "true", "[1]"):
        path.write_text(junk)
        assert pidfile.read(path) is None, junk
    assert pidfile.read(tmp_path / "missing.pid") is None
    assert pidfile.read(path / "not-a-dir") is None


def test_remove_leaves_another_process_record(tmp_path):
    path = tmp_path / "mullamad.pid"
    path.write_text(json.dumps({"pid": os.getpid() + 1, "socket": "s"}))
    pidfile.remove(path)
    assert path.exists()


def test_a_reused_pid_is_no_daemon_but_a_serving_one_is(tmp_path):
    path = tmp_path / "mullamad.pid"
    other = subprocess.Popen(["sleep", "60"])
    daemonish = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "serve"])
    try:
        path.write_text(json.dumps({"pid": other.pid}))
        assert pidfile.process_alive(other.pid) and not pidfile.daemon_alive(other.pid)
        assert pidfile.running_daemon(path) is None
        path.write_text(json.dumps({"pid": daemonish.pid, "http": "http://h"}))
        holder = pidfile.running_daemon(path)
        assert holder is not None and holder.pid == daemonish.pid and holder.http == "http://h"
    finally:
        for proc in (other, daemonish):
            proc.kill()
            proc.wait()
    assert not pidfile.process_alive(other.pid) and pidfile.running_daemon(path) is None
