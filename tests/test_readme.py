"""README's first screen works as written: the run command in a fresh venv, the example, and
.ci/run running the README's test command verbatim."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _sh_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)]


def _python_example() -> str:
    return re.findall(r"```python\n(.*?)```", README, re.S)[0]


def test_first_screen_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    first_screen = README.split("---")[0]
    commands = re.findall(r"```sh\n(.*?)```", first_screen, re.S)
    assert len(commands) == 2
    assert "pilotsock.http" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci.splitlines()


def _kill_pid_file(path: Path, key: str = "pid") -> None:
    try:
        pid = int(json.loads(path.read_text())[key])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        pass


@pytest.mark.timeout(180)
def test_run_command_in_a_fresh_venv_serves_http(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info",
                                                                  ".hypothesis", "build"))
    (checkout / "hello.txt").write_text("served by the README command\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PILOTSOCK_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    command = _sh_blocks()[0]
    server = subprocess.Popen(["bash", "-c", command], cwd=checkout, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 150
        banner = ""
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            if line.startswith("Serving HTTP on"):
                banner = line
                break
        assert banner, f"no banner; exit {server.poll()}"
        url = re.search(r"\((http://[0-9a-f-]+\.pilot:8000/)\)", banner)
        assert url, banner
        client = (
            "import sys, urllib.parse\n"
            "from pilotsock.http import PilotHTTPConnection\n"
            "u = urllib.parse.urlsplit(sys.argv[1])\n"
            "c = PilotHTTPConnection(u.hostname, u.port, timeout=20)\n"
            "c.request('GET', '/hello.txt'); r = c.getresponse(); print(r.status, r.read().decode(), end='')\n"
        )
        fetched = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c", client, url.group(1)],
                                 cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert fetched.stdout == "200 served by the README command\n", fetched.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        _kill_pid_file(home / ".pilotsock" / "daemon.json")
        _kill_pid_file(home / ".pilotsock-registry" / "registry.json")


@pytest.mark.timeout(60)
def test_python_example_runs(tmp_path: Path) -> None:
    from pilotsock.testing.processes import start_daemon, start_registry

    registry = start_registry(tmp_path / "registry")
    daemon = start_daemon(tmp_path / "node", registry.address)
    try:
        result = subprocess.run([sys.executable, "-c", _python_example()], env=daemon.env, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"b'hello over pilot' from ('{daemon.address}', ")
    finally:
        daemon.stop()
        registry.stop()
