"""Progress bar on a pseudo-terminal, silence without one, and the closing summary's rate.

Real subprocesses: `python -m pipeline run` with stderr on a pty (the bar is drawn) or on a pipe
(nothing but the summary); `--quiet` on a pty draws nothing either.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from conftest import PROJECT, SEEDS

ENV = {**os.environ, "PYTHONPATH": str(PROJECT)}


def many_inputs(folder: pathlib.Path, copies: int = 12) -> str:
    """Distinct articles made of the seeds (each copy gets its own first sentence), ~copies x 5 files."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = sorted(SEEDS.glob("*.txt"))
    for n in range(copies):
        for seed in seeds:
            text = seed.read_text(encoding="utf-8")
            (folder / f"{n:03d}_{seed.name}").write_text(
                f"Meldung Nummer {n} aus {seed.stem}: {' '.join(['Wort%d' % (n * 7 + i) for i in range(40)])}.\n\n{text}",
                encoding="utf-8")
    return str(folder / "*.txt")


def run_on_pty(args: list[str], timeout: float = 240) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; returns (exit code, stdout, everything drawn on the pty)."""
    master, slave = pty.openpty()
    # a fresh pty reports 0x0; tqdm draws nothing on a terminal with no columns, so size it like one
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=PROJECT, env=ENV,
                            stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    drawn = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the pty
                break
            if not chunk:
                break
            drawn += chunk
        elif proc.poll() is not None:
            break
    stdout = proc.communicate(timeout=60)[0].decode()
    os.close(master)
    return proc.returncode, stdout, drawn.decode(errors="replace")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return many_inputs(tmp_path_factory.mktemp("progress_in"))


def test_bar_on_a_terminal(inputs, tmp_path):
    code, stdout, drawn = run_on_pty(["run", "--input", inputs, "--output", str(tmp_path / "out")])
    assert code == 0, drawn
    frames = [f for f in re.split(r"[\r\n]", drawn) if "inputs" in f and "/60" in f]
    assert frames, f"no progress frames on the terminal:\n{drawn!r}"
    assert any(re.search(r"\d+%\|", f) for f in frames), frames  # a bar with a percentage
    assert any(re.search(r"inputs/s|s/ inputs", f) for f in frames), frames  # a rate
    assert any(re.search(r"<\d\d:\d\d", f) for f in frames), frames  # time left
    assert "Traceback" not in drawn
    assert re.search(r"done in [\d.]+ s: 60 inputs, [\d.]+ articles/s", stdout), stdout


def test_quiet_on_a_terminal_draws_nothing(inputs, tmp_path):
    code, stdout, drawn = run_on_pty(["run", "--quiet", "--input", inputs, "--output", str(tmp_path / "out")])
    assert code == 0, drawn
    assert drawn.strip() == "", drawn
    assert "done in" in stdout


def test_no_bar_when_stderr_is_not_a_terminal(inputs, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--input", inputs, "--output",
                           str(tmp_path / "out")], cwd=PROJECT, env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "done in" in done.stdout and "articles/s" in done.stdout


def test_workers_are_quiet(tmp_path):
    """`--workers 2` starts Beam SDK worker processes; their start-up logging never reaches the user."""
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--workers", "2", "--input",
                           str(SEEDS / "*.txt"), "--output", str(tmp_path / "out")],
                          cwd=PROJECT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert "2 workers" in done.stdout


def test_rate_line():
    from pipeline.summary import rate_line

    assert rate_line({"inputs": 300}, 12.0) == "done in 12.0 s: 300 inputs, 25.0 articles/s"
    assert rate_line({"inputs": 0}, 0.0) == "done in 0.0 s: 0 inputs, 0.0 articles/s"
